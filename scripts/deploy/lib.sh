# shellcheck shell=bash
# Helpers the deploy scripts share: reading an agent and its side out of a mesh file (the
# layout deploy/mesh.sample.toml shows: [[azure.agents]] / [[oci.agents]] blocks with
# `key = value` lines), the ports the mesh's agents answer on, and agent addresses in every
# form the mesh takes. `xcbench mesh check` validates the file itself; these only look
# things up.

# The agent's ports, all counted from its STAMP port as the agent counts them (PortPlan):
# STAMP (UDP) and TCP probes on it, QUIC probes and throughput-test control on +1 (or
# quic_address's port), throughput data on +2 (TCP and UDP), QUIC throughput data on +3.
MESH_DEFAULT_PORT=862
# Every purpose a rule is made for, in the order (and so the priority) rules are made:
# "purpose transport".
MESH_PURPOSES=("stamp udp" "tcp-probes tcp" "quic udp" "tcp-data tcp" "udp-data udp" "quic-data udp")

# purpose_text PURPOSE: what the rule is for, in words.
purpose_text() {
  case "$1" in
    stamp) echo "STAMP probes" ;;
    tcp-probes) echo "TCP probes" ;;
    quic) echo "QUIC probes and throughput-test control" ;;
    tcp-data) echo "throughput tests: TCP data" ;;
    udp-data) echo "throughput tests: UDP data" ;;
    quic-data) echo "throughput tests: QUIC data" ;;
    *) echo "$1" ;;
  esac
}

# purpose_index PURPOSE: its place in MESH_PURPOSES (0-5).
purpose_index() {
  local i
  for i in "${!MESH_PURPOSES[@]}"; do
    if [ "${MESH_PURPOSES[$i]%% *}" = "$1" ]; then echo "$i"; return 0; fi
  done
  return 1
}

# mesh_side MESH ID: azure or oci, the side whose agents list ID.
mesh_side() {
  awk -v id="$2" '
    /^\[\[azure\.agents\]\]/ { side = "azure" }
    /^\[\[oci\.agents\]\]/ { side = "oci" }
    /^\[/ && !/^\[\[(azure|oci)\.agents\]\]/ { side = "" }
    side != "" && $0 ~ "^[[:space:]]*id[[:space:]]*=[[:space:]]*\"" id "\"" { print side; exit }
  ' "$1"
}

# mesh_agents MESH SIDE: the ids of SIDE's agents, one a line, in the file's order.
mesh_agents() {
  awk -v side="$2" '
    /^\[/ { in_side = ($0 ~ "^\\[\\[" side "\\.agents\\]\\]") }
    in_side && /^[[:space:]]*id[[:space:]]*=/ {
      v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*#.*$/, "", v)
      gsub(/"/, "", v); print v
    }
  ' "$1"
}

# mesh_agent_value MESH ID KEY: KEY's value (quotes removed; an array, even one over several
# lines, as "[a, b]") in ID's block.
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
          while (v ~ /^\[/ && v !~ /\]/ && i < n) {
            i++; more = lines[i]; sub(/[[:space:]]*#.*$/, "", more); sub(/^[[:space:]]*/, " ", more)
            v = v more
          }
          gsub(/"/, "", v); print v; exit
        }
      }
    }
  ' "$1"
}

# mesh_table_value MESH TABLE KEY: KEY's value (quotes removed) in [TABLE], e.g. mesh.probe.
mesh_table_value() {
  awk -v table="$2" -v key="$3" '
    BEGIN { header = table; gsub(/\./, "\\.", header); header = "^\\[" header "\\][[:space:]]*(#.*)?$" }
    /^\[/ { in_table = ($0 ~ header) }
    in_table && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
      v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*#.*$/, "", v)
      gsub(/"/, "", v); print v; exit
    }
  ' "$1"
}

# mesh_space MESH SIDE: the side's address_space CIDRs, comma-separated (the array may span
# lines).
mesh_space() {
  awk -v side="$2" '
    /^\[/ && !open { in_side = ($0 ~ "^\\[" side "\\][[:space:]]*(#.*)?$") }
    in_side && !open && /^[[:space:]]*address_space[[:space:]]*=/ { open = 1; sub(/^[^=]*=/, "") }
    open {
      sub(/#.*$/, ""); text = text $0
      if (text ~ /\]/) {
        sub(/\].*$/, "", text); gsub(/[[" \t]/, "", text); sub(/,$/, "", text)
        print text; exit
      }
    }
  ' "$1"
}

# split_address ADDRESS: "IP PORT" (PORT empty when ADDRESS has none) for each form an agent
# address takes: 10.0.0.5, 10.0.0.5:8862, [fd00::5]:8862, [fd00::5] and fd00::5. Fails, with
# nothing printed, on anything else.
split_address() {
  local a=$1 ip port=""
  case "$a" in
    \[*\]:*) ip=${a%%\]*}; ip=${ip#\[}; port=${a##*\]:} ;;
    \[*\]) ip=${a#\[}; ip=${ip%\]} ;;
    *:*:*) ip=$a ;;
    *:*) ip=${a%:*}; port=${a##*:} ;;
    *) ip=$a ;;
  esac
  if [[ "$ip" == *:* ]]; then
    [[ "$ip" =~ ^[0-9A-Fa-f:.]+$ && "$ip" == *::* || "$ip" =~ ^([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}$ ]] || return 1
    [[ "$ip" != *[!:]: && "$ip" != :[!:]* ]] || return 1
  else
    [[ "$ip" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
  fi
  if [ -n "$port" ]; then
    [[ "$port" =~ ^[0-9]{1,5}$ ]] && [ "$port" -le 65535 ] || return 1
  fi
  printf '%s %s\n' "$ip" "$port"
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

# mesh_agent_ip MESH ID: ID's address without its port.
mesh_agent_ip() {
  local ip _
  read -r ip _ < <(split_address "$(mesh_agent_value "$1" "$2" address)") || return 1
  echo "$ip"
}

# mesh_agent_protocols MESH ID: the protocols peers probe ID with (its own `protocols`, else
# [mesh.probe]'s, else udp), space-separated.
mesh_agent_protocols() {
  local list
  local -a words
  list=$(mesh_agent_value "$1" "$2" protocols)
  if [ -z "$list" ]; then list=$(mesh_table_value "$1" mesh.probe protocols); fi
  if [ -z "$list" ]; then list="[udp]"; fi
  read -ra words <<< "${list//[\[\],]/ }"
  echo "${words[*]}"
}

# mesh_agent_ports MESH ID: "purpose transport port" lines for the ports ID answers on, by
# its address (port 862 when it names none), quic_address and protocols, and [mesh.schedule].
mesh_agent_ports() {
  local address quic_address port quic protocols schedule
  address=$(mesh_agent_value "$1" "$2" address)
  read -r _ port < <(split_address "$address") || {
    echo "lib.sh: $1: $2's address \"$address\": expected IP, IP:port, [IPv6]:port or IPv6" >&2
    return 1
  }
  port=${port:-$MESH_DEFAULT_PORT}
  quic=$((port + 1))
  quic_address=$(mesh_agent_value "$1" "$2" quic_address)
  if [ -n "$quic_address" ]; then
    read -r _ quic < <(split_address "$quic_address") || {
      echo "lib.sh: $1: $2's quic_address \"$quic_address\": expected IP, IP:port, [IPv6]:port or IPv6" >&2
      return 1
    }
    quic=${quic:-$MESH_DEFAULT_PORT}
  fi
  protocols=" $(mesh_agent_protocols "$1" "$2") "
  schedule=$(grep -c '^\[mesh\.schedule\]' "$1" || true)
  if [[ "$protocols" == *" udp "* ]]; then echo "stamp udp $port"; fi
  if [[ "$protocols" == *" tcp "* ]]; then echo "tcp-probes tcp $port"; fi
  if [[ "$protocols" == *" quic "* ]] || [ "$schedule" -gt 0 ]; then echo "quic udp $quic"; fi
  if [ "$schedule" -gt 0 ]; then
    echo "tcp-data tcp $((port + 2))"
    echo "udp-data udp $((port + 2))"
    echo "quic-data udp $((port + 3))"
  fi
}

# mesh_side_ports MESH SIDE: "purpose transport ports" lines, ports comma-separated: for
# each purpose, the ports any of SIDE's agents answers on, in MESH_PURPOSES' order. The
# same for every agent of the side, so rules made from it do not depend on which agent
# they were made for.
mesh_side_ports() {
  local id lines="" purpose
  while read -r id; do
    lines+=$(mesh_agent_ports "$1" "$id")$'\n' || return 1
  done < <(mesh_agents "$1" "$2")
  for purpose in "${MESH_PURPOSES[@]}"; do
    printf '%s' "$lines" | awk -v want="$purpose" '
      ($1 " " $2) == want && !seen[$3]++ { ports = ports (n++ ? "," : "") $3 }
      END { if (n) print want, ports }
    '
  done
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
