#!/usr/bin/env bash
# Install what the tests need and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test,privacy,baselines,baselines-bsl
# The report's browser test needs chromium; without it that test skips (outside CI, where
# HEALTHSYNTH_REQUIRE_BROWSER=1 turns the skip into a failure).
bash scripts/install-browser.sh || echo "install-browser: failed; the browser test will skip"
# The OMOP database tests need a PostgreSQL server: a throwaway cluster (Debian's postgresql,
# installed if missing), stopped at the end whatever happens. Without one those tests skip
# (outside CI, where HEALTHSYNTH_REQUIRE_EXTRAS=1 turns the skip into a failure).
if [ -z "${HEALTHSYNTH_TEST_POSTGRES_URL:-}" ]; then
  export HEALTHSYNTH_PG_STATE="$(mktemp -u /tmp/healthsynth-test-pg.XXXXXX.state)"
  if pg_env="$(bash scripts/postgres.sh start)"; then
    trap 'bash scripts/postgres.sh stop' EXIT
    eval "$pg_env"
  else
    echo "postgres: no server could be started; the database tests will skip"
  fi
fi
"${HEALTHSYNTH_VENV:-.venv}/bin/python" -m pytest "$@"
