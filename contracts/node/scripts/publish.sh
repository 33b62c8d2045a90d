#!/bin/sh
# Publish pact files to the Pact Broker at PACT_BROKER_BASE_URL (see lib.sh for the variables).
#
#   scripts/publish.sh                 # the Node service's consumer pact (wb_queue)
#   scripts/publish.sh FILE...         # other files, e.g. the agent service's ag_queue pact
#
# Each file is published as a version (GIT_COMMIT) and branch (GIT_BRANCH) of its consumer: run
# it in the consumer's own repository and CI job. Without PACT_BROKER_BASE_URL it only says so.
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"

no_broker "publish" && exit 0

if [ "$#" -eq 0 ]; then
  set -- "${PACT_DIR:-$HERE/../../pacts}/whatsapp-node-service-whatsapp-agent-service.json"
fi
VERSION="$(version)"
BRANCH="$(branch)"
echo "publishing $* as version $VERSION on branch $BRANCH to $PACT_BROKER_BASE_URL"
pact_broker publish "$@" \
  --consumer-app-version "$VERSION" \
  --branch "$BRANCH" \
  --broker-base-url "$PACT_BROKER_BASE_URL"
