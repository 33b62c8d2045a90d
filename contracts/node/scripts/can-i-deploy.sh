#!/bin/sh
# Ask the Pact Broker whether this version may be deployed: every pact it is a party to must be
# verified against the versions already in the target environment. Exit 1 = do not deploy.
#
#   scripts/can-i-deploy.sh [PACTICIPANT]     # default: whatsapp-node-service
#
# DEPLOY_ENVIRONMENT (default production) is the target; after deploying, record it with
#   pact-broker record-deployment --pacticipant P --version V --environment production
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"

no_broker "check" && exit 0

PACTICIPANT="${1:-whatsapp-node-service}"
VERSION="$(version)"
ENVIRONMENT="${DEPLOY_ENVIRONMENT:-production}"
echo "can $PACTICIPANT $VERSION be deployed to $ENVIRONMENT?"
pact_broker can-i-deploy \
  --pacticipant "$PACTICIPANT" \
  --version "$VERSION" \
  --to-environment "$ENVIRONMENT" \
  --retry-while-unknown "${CAN_I_DEPLOY_RETRIES:-6}" \
  --retry-interval 10 \
  --broker-base-url "$PACT_BROKER_BASE_URL"
