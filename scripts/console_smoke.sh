#!/usr/bin/env bash
# Smoke test of the real console in a real terminal, as a person uses it, at 80x24
# (SMOKE_SIZE=120x40 for another size), in tmux on a fresh store:
#   1. drop a folder of PDFs (a bracketed paste of the quoted path, as terminals do);
#      the enqueue dialog shows its count and buttons; enter enqueues one batch;
#   2. jobs run; p pauses claiming: PAUSED shows in the status line;
#   3. q with jobs running: the quit dialog; "Finish them"; FINISHING shows;
#      q again asks before abandoning anything; y hands the jobs back and exits;
#   4. afterwards no job of that run is left `processing` (jobtui jobs --json), and
#      the handed-back jobs are pending with their attempt refunded.
# Every step must show on the captured screen; any that does not fails the script.
set -euo pipefail

SIZE=${SMOKE_SIZE:-80x24}
WIDTH=${SIZE%x*} HEIGHT=${SIZE#*x}
STEP_TIMEOUT=${STEP_TIMEOUT:-60}
work=$(mktemp -d)
session="jobtui-smoke-$$"
inbox="$work/scans to do"   # a space, as dropped folders often have

cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

screen() { tmux capture-pane -p -t "$session" 2>/dev/null || true; }

fail() {
  echo "console_smoke: FAIL: $*" >&2
  echo "----- screen -----" >&2
  screen >&2
  echo "------------------" >&2
  echo "session alive: $(tmux has-session -t "$session" 2>&1 && echo yes)" >&2
  exit 1
}

# wait_for TEXT [TIMEOUT]: until TEXT shows on the screen (fixed string)
wait_for() {
  local text=$1 timeout=${2:-$STEP_TIMEOUT} start=$SECONDS
  until screen | grep -qF -- "$text"; do
    if (( SECONDS - start > timeout )); then
      fail "'$text' did not show within ${timeout}s"
    fi
    sleep 0.2
  done
  echo "console_smoke: ok: $text"
}

# Four PDFs of 60 scanned pages (an image of text, no text layer): every page goes
# through OCR (~0.3 s), so the jobs are still running when the script quits.
mkdir -p "$inbox"
python3 - "$inbox" <<'PY'
import sys
from pathlib import Path

import pymupdf

src = pymupdf.open()
page = src.new_page()
text = "Smoke test scan: the quick brown fox jumps over the lazy dog. " * 3
for line in range(30):
    page.insert_text((40, 50 + 24 * line), text[line % 20 : line % 20 + 70], fontsize=11)
scan = page.get_pixmap(dpi=150).tobytes("png")
for i in range(4):
    doc = pymupdf.open()
    for n in range(60):
        doc.new_page().insert_image(doc[-1].rect, stream=scan)
    doc.save(Path(sys.argv[1]) / f"scan {i}.pdf")
    doc.close()
PY

if command -v jobtui >/dev/null && [[ -z "${SMOKE_FROM_SOURCE:-}" ]]; then
  cmd=(jobtui)
else
  cmd=(python3 -m jobtui.tui)
fi
printf -v cmdline '%q ' "${cmd[@]}"
env_vars=(
  "JOBTUI_STORE=$work/jobtui.db"
  "JOBTUI_CONFIG_DIR=$work/config"
  "JOBTUI_OUTPUT_DIR=$work/out"
  "JOBTUI_SHUTDOWN_GRACE=300"   # "Finish them" would wait long: the second q must not
  "TERM=xterm-256color"
)
[[ -n "${PYTHONPATH:-}" ]] && env_vars+=("PYTHONPATH=$PYTHONPATH")
printf -v envline '%q ' "${env_vars[@]}"
jobtui_cli() { env "${env_vars[@]}" "${cmd[@]}" "$@"; }

tmux new-session -d -s "$session" -x "$WIDTH" -y "$HEIGHT" \
  "cd $(printf %q "$PWD") && env $envline $cmdline; echo \"JOBTUI-EXITED rc=\$?\"; sleep 60"

wait_for "connected"
wait_for "Batches"

# 1. A drop: the terminal pastes the quoted path with a trailing space, bracketed.
tmux set-buffer -- "'$inbox' "
tmux paste-buffer -p -t "$session"
wait_for "Enqueue a folder or files"
wait_for "Found 4 files: 4 pdf.transcribe"
wait_for "Enqueue 4 files"   # the button is on screen at this size
tmux send-keys -t "$session" Enter
wait_for "scans to do"

# 2. Jobs run here; pause claiming.
wait_for "▶ processing" 90
tmux send-keys -t "$session" p
wait_for "PAUSED"

# 3. Quit with jobs running: finish them, then change our mind: hand them back.
tmux send-keys -t "$session" q
wait_for "running in this process"
tmux send-keys -t "$session" BTab BTab Enter   # from "Don't quit" to "Finish them"
wait_for "FINISHING"
tmux send-keys -t "$session" q
wait_for "Still finishing"
wait_for "back to the queue"
if [[ -n "${SMOKE_SHOW:-}" ]]; then screen; fi
tmux send-keys -t "$session" y
wait_for "JOBTUI-EXITED rc=0" 30

# 4. Nothing of that run is left processing; what ran went back with its attempt.
jobtui_cli jobs --json > "$work/jobs.json"
python3 - "$work/jobs.json" <<'PY' || fail "jobs left behind (see above)"
import json
import sys
from collections import Counter

jobs = json.load(open(sys.argv[1]))
states = Counter(j["status"] for j in jobs)
print(f"console_smoke: jobs after quit: {dict(states)}")
assert len(jobs) == 4, len(jobs)
assert states["processing"] == 0, "a job was left processing"
assert states["pending"] >= 1, "no job was handed back (did they all finish?)"
for j in jobs:
    if j["status"] == "pending":
        assert j["attempts"] == 0, f"{j['job_id']}: attempt not refunded ({j['attempts']})"
PY
echo "console_smoke: passed"
