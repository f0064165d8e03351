#!/usr/bin/env bash
# `lathe repl` on a real terminal, driven through tmux: the prompt appears, values print,
# libedit's line editing works (Ctrl-A to the start of the line, then typing there), Up recalls
# the history, an error leaves the session going, and :quit ends it. tmux is installed by
# scripts/install-deps.sh; without it this test fails rather than skipping.
set -euo pipefail
LATHE=$(realpath "$1")
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (scripts/install-deps.sh)"; exit 1; }
TMP=$(mktemp -d)
S=lathe-repl-$$
trap 'tmux -L "$S" kill-server 2>/dev/null || true; rm -rf "$TMP"' EXIT
T=(tmux -L "$S")   # a private tmux server: nothing of the user's sessions is touched

# HOME: the history file goes to the temp dir; TERM: a terminal libedit knows
"${T[@]}" new-session -d -s repl -x 120 -y 50 \
  "env HOME=$TMP TERM=xterm $LATHE repl; echo REPL-EXITED \$?; sleep 30"

pane() { "${T[@]}" capture-pane -p -t repl -S -200; }
wait_for() { # PATTERN [COUNT]: until the pane shows PATTERN at least COUNT times (10 s)
  local want=${2:-1}
  for _ in $(seq 1 200); do
    [[ $(pane | grep -c -- "$1" || true) -ge $want ]] && { echo "ok: $1"; return 0; }
    sleep 0.05
  done
  echo "FAIL: no '$1' (x$want) on the terminal:"; pane; exit 1
}
send() { "${T[@]}" send-keys -t repl "$@"; }

wait_for 'lathe>'
send 'param w: f32[2] = ones' Enter
send 'w * 5' Enter
wait_for '\[5.0000 5.0000\]'
send 'w + 1'                        # then Ctrl-A and "10 * " in front: 10 * w + 1
send C-a
send '10 * ' Enter
wait_for '\[11.0000 11.0000\]'
send Up Enter                       # the history: 10 * w + 1 again
wait_for '\[11.0000 11.0000\]' 2
send 'nosuch(w)' Enter
wait_for "<input>:1:1: error: unknown function 'nosuch'"
send 'w - 1' Enter                  # the session goes on after the error
wait_for '\[0.0000 0.0000\]'
send ':quit' Enter
wait_for 'REPL-EXITED 0'
[[ -s $TMP/.lathe_history ]] || { echo "FAIL: no history written to \$HOME/.lathe_history"; exit 1; }
echo "ok: history saved in \$HOME/.lathe_history"
