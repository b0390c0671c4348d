# shellcheck shell=bash
# A private OpenSSH sshd configured from config/sshd_config.template, shared by
# scripts/demo, scripts/bench and scripts/setup-server. Source it from bash; it
# only defines functions and sets no options. The caller defines `die MESSAGE` (prints and
# exits non-zero) and `note MESSAGE` (prints a line); these functions use both.
#
#   sshd_lib_account USER [SHELL]
#       creates USER as a system account (no home folder, home /, SHELL or
#       /usr/sbin/nologin) when it is missing, and sets its password field to
#       `*`: with UsePAM no, sshd refuses a locked ("!") account even for public
#       keys. An existing account keeps its shell.
#   sshd_lib_fill TEMPLATE OUT PORT HOST_KEY PID_FILE USER CHROOT AUTHORIZED_KEYS [LISTEN]
#       writes TEMPLATE to OUT with every placeholder replaced, listening on
#       LISTEN or 127.0.0.1 (values verbatim, as the template says: no spaces).
#   sshd_lib_start FIRST LAST CONFIG LOG WRITER
#       starts sshd on the first free port in FIRST..LAST. For each candidate it
#       calls `WRITER PORT` (in this shell), which writes CONFIG for that port,
#       checks CONFIG with `sshd -t`, runs `sshd -D -e -f CONFIG` in the
#       background (stderr appended to LOG) and polls a TCP connect for up to
#       5 s. Sets SSHD_PID and SSHD_PORT. Creates /run/sshd (a root sshd needs
#       it). Dies when sshd fails for another reason than a port in use, or when
#       no port is free.
#   sshd_lib_stop LABEL
#       stops SSHD_PID (that pid only) when it runs and notes
#       "stopped the LABEL (pid N)"; clears SSHD_PID.
#   sshd_lib_stop_stale PID_FILE CONFIG LABEL
#       stops an sshd left running by an interrupted run: the pid in PID_FILE,
#       and only if that process's command line says `-f CONFIG`.
#   sshd_lib_known_host PORT HOST_KEY_PUB
#       prints the known_hosts line for 127.0.0.1:PORT.
#   sshd_lib_port_in_use PORT
#       true when something accepts a TCP connection on 127.0.0.1:PORT.

sshd_lib_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

sshd_lib_account() {
    local user=$1 shell=${2:-/usr/sbin/nologin}
    if ! id "$user" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir / --shell "$shell" "$user"
    fi
    # With UsePAM no, sshd refuses a locked ("!") account even for public keys.
    usermod -p '*' "$user"
}

sshd_lib_fill() {
    local template=$1 out=$2 port=$3 host_key=$4 pid_file=$5 user=$6 chroot=$7 keys=$8
    local listen=${9:-127.0.0.1}
    sed -e "s|@LISTEN@|$listen|g" \
        -e "s|@PORT@|$port|g" \
        -e "s|@HOST_KEY@|$host_key|g" \
        -e "s|@PID_FILE@|$pid_file|g" \
        -e "s|@USER@|$user|g" \
        -e "s|@CHROOT@|$chroot|g" \
        -e "s|@AUTHORIZED_KEYS@|$keys|g" \
        "$template" >"$out"
}

# shellcheck disable=SC2034 # SSHD_PID and SSHD_PORT are for the caller
sshd_lib_start() {
    local first=$1 last=$2 config=$3 log=$4 writer=$5
    local sshd=${SSHD:-/usr/sbin/sshd} candidate
    # shellcheck disable=SC2174 # /run exists: only /run/sshd is made, 0755
    mkdir -p -m 0755 /run/sshd
    SSHD_PID=""
    SSHD_PORT=""
    for candidate in $(seq "$first" "$last"); do
        sshd_lib_port_in_use "$candidate" && continue
        "$writer" "$candidate"
        "$sshd" -t -f "$config" || die "sshd -t rejected $config"
        "$sshd" -D -e -f "$config" 2>>"$log" &
        SSHD_PID=$!
        for _ in $(seq 50); do
            sshd_lib_port_in_use "$candidate" && break
            kill -0 "$SSHD_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SSHD_PID" 2>/dev/null && sshd_lib_port_in_use "$candidate"; then
            SSHD_PORT=$candidate
            return 0
        fi
        wait "$SSHD_PID" 2>/dev/null || true
        SSHD_PID=""
        grep -q "Address already in use" "$log" || {
            cat "$log" >&2
            die "sshd did not start"
        }
    done
    die "no free port for sshd in $first-$last"
}

sshd_lib_stop() {
    if [ -n "${SSHD_PID:-}" ] && kill -0 "$SSHD_PID" 2>/dev/null; then
        kill "$SSHD_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
        note "stopped the $1 (pid $SSHD_PID)"
    fi
    SSHD_PID=""
}

sshd_lib_stop_stale() {
    local pid_file=$1 config=$2 label=$3 old_pid
    [ -f "$pid_file" ] || return 0
    old_pid="$(cat "$pid_file" 2>/dev/null || true)"
    if [ -n "$old_pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$old_pid/cmdline" | grep -q -- "-f $config"; then
        note "stopping the sshd of an earlier $label (pid $old_pid)"
        kill "$old_pid" 2>/dev/null || true
        sleep 0.5
    fi
}

sshd_lib_known_host() {
    printf '[127.0.0.1]:%s %s\n' "$1" "$(cut -d' ' -f1,2 "$2")"
}
