# shellcheck shell=bash
# Helpers the deploy scripts share. Every fact about the mesh (an agent's side and address,
# the address spaces, the ports and purposes of the rules each side needs) comes from the
# xcbench binary, which parses the mesh as the agents do and plans the rules as `xcbench mesh
# check` prints them: `xcbench mesh agent MESH ID` and `xcbench mesh rules MESH --side SIDE`.
# Nothing here parses TOML or knows a port.

# xcbench_cmd: the binary to ask: $XCBENCH when set, else `xcbench` on PATH, else this
# checkout's release build.
xcbench_cmd() {
  if [ -n "${XCBENCH:-}" ]; then
    echo "$XCBENCH"
  elif command -v xcbench >/dev/null; then
    echo xcbench
  elif [ -x "$(dirname "${BASH_SOURCE[0]}")/../../target/release/xcbench" ]; then
    echo "$(dirname "${BASH_SOURCE[0]}")/../../target/release/xcbench"
  else
    echo "deploy: no xcbench binary: install the package, put it on PATH, or set XCBENCH" >&2
    return 1
  fi
}

# mesh_agent MESH ID: ID's fields as `key<TAB>value` lines (validates the whole mesh; its
# errors name the file, field and value).
mesh_agent() {
  local bin
  bin=$(xcbench_cmd) || return 1
  "$bin" mesh agent "$1" "$2"
}

# field LINES KEY: KEY's value in `key<TAB>value` LINES.
field() {
  awk -F '\t' -v key="$2" '$1 == key { print $2; exit }' <<< "$1"
}

# mesh_inbound_rules MESH SIDE: the rules that admit the other side to SIDE's agents, one a
# line: "purpose transport ports order text" (ports comma-separated, text the rest of the
# line), in the order `xcbench mesh check` lists them. Rules toward the collector are left
# out: its host's network is the operator's to open.
mesh_inbound_rules() {
  local bin
  bin=$(xcbench_cmd) || return 1
  "$bin" mesh rules "$1" --side "$2" |
    awk -F '\t' '$2 == "inbound" && $5 != "collector" { print $5, $3, $4, $6, $8 }'
}

# ip_family IP-OR-CIDR: 6 for IPv6, else 4.
ip_family() {
  case "$1" in *:*) echo 6 ;; *) echo 4 ;; esac
}

# of_family CIDRS FAMILY: the comma-separated CIDRS of FAMILY (4 or 6), comma-separated.
of_family() {
  local block out=""
  local -a blocks
  IFS=, read -ra blocks <<< "$1"
  for block in "${blocks[@]}"; do
    if [ "$(ip_family "$block")" = "$2" ]; then out+="${out:+,}$block"; fi
  done
  echo "$out"
}

# run_or_print RUN CMD...: runs CMD when RUN is 1, else prints it shell-quoted.
run_or_print() {
  local run=$1
  shift
  if [ "$run" = 1 ]; then
    "$@"
  else
    printf '%q ' "$@"
    printf '\n'
  fi
}
