# Sourced by the lab's API scripts (api_flow.sh, drive_update.sh), with OUT set: the API
# socket path, a request logger and a console waiter.
#   req METHOD PATH [BODY]    curl on $SOCK; writes OUT/steps/<n>.{meta,req,resp}
#   wait_for PATTERN SECONDS  until OUT/console.txt has a line matching PATTERN (else OUT/errors.txt)
#   start_vmm [ARGS...]       bin/sparkler on $SOCK (console.txt, vmm.log), waits for the socket; sets pid
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Unix sockets cannot live on the lab's 9p share (ENXIO): keep it in /tmp.
SOCK="$(mktemp -u /tmp/sparkler-api.XXXXXX.sock)"
mkdir -p "$OUT/steps"
n=0
req() {
  n=$((n + 1))
  local f="$OUT/steps/$n"
  printf '%s %s\n' "$1" "$2" > "$f.meta"
  if [ $# -ge 3 ]; then printf '%s' "$3" > "$f.req"; fi
  curl -s -o "$f.resp" -w '%{http_code}\n' --unix-socket "$SOCK" -X "$1" "http://localhost$2" \
    -H 'Accept: application/json' -H 'Content-Type: application/json' ${3:+--data "$3"} >> "$f.meta"
}
wait_for() {
  for _ in $(seq $(( $2 * 10 ))); do grep -q "$1" "$OUT/console.txt" && return 0; sleep 0.1; done
  echo "timed out waiting for '$1'" >> "$OUT/errors.txt"; return 1
}
start_vmm() {
  "$ROOT/bin/sparkler" --api-sock "$SOCK" "$@" > "$OUT/console.txt" 2> "$OUT/vmm.log" < /dev/null &
  pid=$!
  for _ in $(seq 300); do [ -S "$SOCK" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}
