#!/usr/bin/env bash
# make-certs.sh DIR [CA-NAME]: a throw-away CA and a server certificate for localhost / 127.0.0.1
# (EC P-256, valid one day) in DIR: ca.crt, ca.key, server.crt, server.key. For the demo and the
# benchmarks; the tests make their own (tests/support/pki.cpp).
set -euo pipefail
dir=$1
ca_name=${2:-redis-sidecar demo CA}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=$ca_name" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/san.cnf"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -CAcreateserial -days 1 -extfile "$dir/san.cnf" -out "$dir/server.crt" 2>/dev/null
