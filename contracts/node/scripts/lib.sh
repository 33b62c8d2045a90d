# Shared by publish.sh and can-i-deploy.sh (sourced, POSIX sh).
#
# PACT_BROKER_BASE_URL  the broker; unset = no broker, the scripts say so and exit 0
# PACT_BROKER_TOKEN     bearer token (or PACT_BROKER_USERNAME / PACT_BROKER_PASSWORD); the CLI
#                       reads these from the environment, so they never appear on a command line
# GIT_COMMIT            the version of this pacticipant (default: git rev-parse HEAD)
# GIT_BRANCH            its branch (default: the current git branch)
# PACT_BROKER_CLI       the `pact-broker` command to use (default: `pact-broker` on PATH, else the
#                       pinned @pact-foundation/pact-cli through npx)

PACT_CLI_PACKAGE="@pact-foundation/pact-cli@18.1.2"
export PACT_DO_NOT_TRACK="${PACT_DO_NOT_TRACK:-true}"

no_broker() {
  if [ -z "${PACT_BROKER_BASE_URL:-}" ]; then
    echo "PACT_BROKER_BASE_URL is not set: no Pact Broker, nothing to $1." >&2
    return 0
  fi
  return 1
}

version() {
  if [ -n "${GIT_COMMIT:-}" ]; then echo "$GIT_COMMIT"; else git rev-parse HEAD; fi
}

branch() {
  if [ -n "${GIT_BRANCH:-}" ]; then echo "$GIT_BRANCH"; else git rev-parse --abbrev-ref HEAD; fi
}

pact_broker() {
  if [ -n "${PACT_BROKER_CLI:-}" ]; then
    # shellcheck disable=SC2086 # a command with its arguments, split on purpose
    $PACT_BROKER_CLI "$@"
  elif command -v pact-broker >/dev/null 2>&1; then
    pact-broker "$@"
  else
    npx --yes --package="$PACT_CLI_PACKAGE" -- pact-broker "$@"
  fi
}
