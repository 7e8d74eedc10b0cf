#!/usr/bin/env bash
# Smoke test of the real console in a real terminal: start `jobtui` in tmux at 120x40
# on a fresh store, paste a folder of PDFs with a bracketed paste (as a drop does),
# confirm the enqueue dialog, wait until the batch shows completed, quit with q.
# Every step must show on the captured screen; any that does not fails the script.
set -euo pipefail

WIDTH=120 HEIGHT=40
STEP_TIMEOUT=${STEP_TIMEOUT:-60}
work=$(mktemp -d)
session="jobtui-smoke-$$"
inbox="$work/scans to do"   # a space, as dropped folders often have

cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "console_smoke: FAIL: $*" >&2
  echo "----- screen -----" >&2
  tmux capture-pane -p -t "$session" >&2 2>/dev/null || true
  echo "------------------" >&2
  exit 1
}

# wait_for TEXT [TIMEOUT]: until TEXT shows on the screen (fixed string)
wait_for() {
  local text=$1 timeout=${2:-$STEP_TIMEOUT} start=$SECONDS
  until tmux capture-pane -p -t "$session" 2>/dev/null | grep -qF -- "$text"; do
    if (( SECONDS - start > timeout )); then
      fail "'$text' did not show within ${timeout}s"
    fi
    sleep 0.2
  done
  echo "console_smoke: ok: $text"
}

mkdir -p "$inbox"
python3 - "$inbox" <<'PY'
import sys
from pathlib import Path

import pymupdf

for i in range(3):
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), f"Smoke test document {i}: the quick brown fox.")
    doc.save(Path(sys.argv[1]) / f"letter {i}.pdf")
    doc.close()
PY

if command -v jobtui >/dev/null; then
  cmd=(jobtui)
else
  cmd=(python3 -c 'import sys; from jobtui.tui.cli import main; sys.exit(main())')
fi
printf -v cmdline '%q ' "${cmd[@]}"
env_vars=(
  "JOBTUI_STORE=$work/jobtui.db"
  "JOBTUI_CONFIG_DIR=$work/config"
  "JOBTUI_OUTPUT_DIR=$work/out"
  "TERM=xterm-256color"
)
printf -v envline '%q ' "${env_vars[@]}"

tmux new-session -d -s "$session" -x "$WIDTH" -y "$HEIGHT" \
  "cd $(printf %q "$PWD") && env $envline $cmdline; echo \"JOBTUI-EXITED rc=\$?\"; sleep 30"

wait_for "connected"
wait_for "Batches"

# A drop: the terminal pastes the quoted path with a trailing space, bracketed.
tmux set-buffer -- "'$inbox' "
tmux paste-buffer -p -t "$session"
wait_for "Enqueue a folder or files"
wait_for "Found 3 PDFs"

tmux send-keys -t "$session" Enter
wait_for "scans to do"
wait_for "✔ completed" 120
tmux capture-pane -p -t "$session" | grep -F "scans to do" | grep -qF "✔ completed" \
  || fail "the batch row does not show completed"
tmux capture-pane -p -t "$session" | grep -F "scans to do" | grep -qE "\b3\b" \
  || fail "the batch row does not show 3 jobs"

if [[ -n "${SMOKE_SHOW:-}" ]]; then tmux capture-pane -p -t "$session"; fi
tmux send-keys -t "$session" q
wait_for "JOBTUI-EXITED rc=0" 30
echo "console_smoke: passed"
