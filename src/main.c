/*
 * main.c: the binance-live command line (placeholder until app.c lands).
 */
#include <stdio.h>

#include "core/log.h"

int main(void) {
  log_error("main", "not implemented yet");
  return 1;
}
