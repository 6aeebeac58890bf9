#!/usr/bin/env bash
# t/certs/gen.sh DIR: makes throw-away TLS test material in DIR with openssl:
#   ca.crt                     test CA (trust anchor for the tests)
#   server.crt/server.key      localhost, 127.0.0.1, ::1, signed by ca
#   wronghost.crt/.key         CN/SAN wrong.example, signed by ca
#   expired.crt/.key           localhost, valid 2020-01-01..2020-12-31, by ca
#   unknown.crt/.key           localhost, signed by another CA (not trusted)
# mbedTLS 2.28 matches only dNSName SANs, so the IP literals are also
# listed as DNS names (next to the proper IP SANs) for tests that connect
# to 127.0.0.1 or ::1 with TLS. EC P-256 keys keep it fast.
set -euo pipefail
dir=${1:?usage: gen.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

mkca() { # name cn
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.crt" 2>/dev/null
}

leaf() { # name ca cn san
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" \
    -CAcreateserial -days 825 -sha256 -extfile "$1.ext" -out "$1.crt" \
    2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

LOCAL_SAN='DNS:localhost,IP:127.0.0.1,IP:::1,DNS:127.0.0.1,DNS:::1'
mkca ca "binance-live test CA"
mkca otherca "unknown test CA"
leaf server ca localhost "$LOCAL_SAN"
leaf wronghost ca wrong.example 'DNS:wrong.example'
leaf unknown otherca localhost "$LOCAL_SAN"

# Expired: `openssl x509 -req` cannot back-date in OpenSSL 3.0, `openssl ca`
# can, with -startdate/-enddate and a minimal config.
key expired.key
openssl req -new -key expired.key -subj /CN=localhost -out expired.csr \
  2>/dev/null
mkdir -p ca.db
: >ca.db/index.txt
echo 1000 >ca.db/serial
cat >ca.db/ca.cnf <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = ca.db
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
certificate = ca.crt
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf_ext
unique_subject = no
[ any ]
commonName = supplied
[ leaf_ext ]
subjectAltName = $LOCAL_SAN
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
CNF
openssl ca -batch -config ca.db/ca.cnf -in expired.csr -out expired.crt \
  -startdate 20200101000000Z -enddate 20201231000000Z -notext 2>/dev/null
rm -rf ca.db expired.csr ca.srl otherca.srl
