#!/bin/sh
# Installs the pinned packages (package-lock.json) that fake_aws.mjs and its self-test import
# into this folder's node_modules; see tests/support/npm-ci.sh (idempotent, serialized, fails
# loudly: the IAM integration tests must fail, not skip, when npm or the registry cannot be
# reached).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec sh "$here/../../support/npm-ci.sh" "$here" "fake_aws.mjs (the IAM tests' AWS stand-in)" \
    @smithy/signature-v4 @aws-crypto/sha256-js @aws-sdk/client-sts
