# shellcheck shell=bash
# Helpers the deploy scripts share: reading an agent and its side out of a mesh file (the
# layout deploy/mesh.sample.toml shows: [[azure.agents]] / [[oci.agents]] blocks with
# `key = value` lines), and the ports the mesh's agents use. `xcbench mesh check` validates
# the file itself; these only look things up.

# mesh_side MESH ID: azure or oci, the side whose agents list ID.
mesh_side() {
  awk -v id="$2" '
    /^\[\[azure\.agents\]\]/ { side = "azure" }
    /^\[\[oci\.agents\]\]/ { side = "oci" }
    /^\[/ && !/^\[\[(azure|oci)\.agents\]\]/ { side = "" }
    side != "" && $0 ~ "^[[:space:]]*id[[:space:]]*=[[:space:]]*\"" id "\"" { print side; exit }
  ' "$1"
}

# mesh_agent_value MESH ID KEY: KEY's value (quotes removed) in ID's block.
mesh_agent_value() {
  awk -v id="$2" -v key="$3" '
    /^\[/ { if (found) exit; inblock = ($0 ~ /^\[\[(azure|oci)\.agents\]\]/); block = "" }
    inblock { block = block "\n" $0 }
    inblock && $0 ~ "^[[:space:]]*id[[:space:]]*=[[:space:]]*\"" id "\"" { found = 1 }
    END {
      if (!found) exit
      n = split(block, lines, "\n")
      for (i = 1; i <= n; i++) {
        if (lines[i] ~ "^[[:space:]]*" key "[[:space:]]*=") {
          v = lines[i]; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*#.*$/, "", v)
          gsub(/"/, "", v); print v; exit
        }
      }
    }
  ' "$1"
}

# mesh_space MESH SIDE: the side's address_space CIDRs, comma-separated.
mesh_space() {
  awk -v side="$2" '
    /^\[/ { in_side = ($0 ~ "^\\[" side "\\][[:space:]]*(#.*)?$") }
    in_side && /^[[:space:]]*address_space[[:space:]]*=/ {
      v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*#.*$/, "", v)
      gsub(/[][" ]/, "", v); print v; exit
    }
  ' "$1"
}

# mesh_ports MESH: "proto port purpose" lines for the ports every agent answers on: STAMP
# always; TCP and QUIC by [mesh.probe] protocols; throughput data with [mesh.schedule].
mesh_ports() {
  local protocols schedule
  protocols=$(awk '/^\[/ { in_probe = ($0 ~ /^\[mesh\.probe\][[:space:]]*(#.*)?$/) } in_probe && /^[[:space:]]*protocols/ { print; exit }' "$1")
  schedule=$(grep -c '^\[mesh\.schedule\]' "$1" || true)
  echo "udp 862 STAMP"
  case "$protocols" in *'"tcp"'*) echo "tcp 862 TCP-probes" ;; esac
  if [[ "$protocols" == *'"quic"'* ]] || [ "$schedule" -gt 0 ]; then echo "udp 863 QUIC"; fi
  if [ "$schedule" -gt 0 ]; then
    echo "tcp 864 throughput-data"
    echo "udp 864 throughput-data"
    echo "udp 865 QUIC-throughput-data"
  fi
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
