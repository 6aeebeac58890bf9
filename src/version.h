/*
 * version.h: the release number printed by `binance-live --version`.
 */
#ifndef BL_VERSION_H
#define BL_VERSION_H

#define BL_VERSION "0.1.0"

#endif
