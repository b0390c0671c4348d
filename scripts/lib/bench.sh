# shellcheck shell=bash
# What scripts/bench and scripts/bench-large share: the work folder, the one
# private sshd with its two accounts, the byte-counting relay, timing a client
# process, wpkgsync and rsync clients, restoring a client's old copy, and the
# table. Source it from bash after scripts/lib/sshd.sh; it sets no options.
#
# The caller sets before sourcing:
#   ROOT        the checkout (config/sshd_config.template, scripts/bench-relay.py)
#   BENCH_NAME  how messages name the script, e.g. scripts/bench
# and before bench_start: RUNS, WORK, KEEP (the WPKGSYNC_BENCH_* knobs, read
# by bench_read_knobs).
#
#   bench_help SCRIPT ARGS...     prints SCRIPT's header comment for -h/--help
#                                 and exits; refuses any other argument
#   bench_read_knobs DEFAULT_DIR  RUNS, WORK, KEEP, checked
#   bench_start                   prerequisites, the work folder, the binary
#                                 (BIN: a copy in the work folder), sshd and
#                                 the relay; sets CHROOT, REPO, KEYS, GEN,
#                                 SAVED, PORT, RPORT, KH, SSH_CMD, ROWS; the
#                                 EXIT trap stops both and removes WORK once
#                                 OK=1 (unless KEEP=1)
#   run_client NAME DROP CMD...   times CMD (T_SECS, T_RSS_MIB)
#   make_client DIR [PACKAGES]    a wpkgsync client: DIR/{direct,relay}.ini
#   wpk NAME DIR direct|relay DROP, rsy NAME DEST direct|relay DROP
#   measure_bytes CMD...          BYTES: what CMD (through the relay) carried
#   save_client DIR SAVED, restore_client SAVED DIR, save_copy / restore_copy
#   median, maximum, ratio, times_x, calc, mb, kib, verdict, row, print_table

TEMPLATE="$ROOT/config/sshd_config.template"
RELAY="$ROOT/scripts/bench-relay.py"
SSHD=/usr/sbin/sshd
WPK_USER=wpkgsync-bench
RSYNC_USER=wpkgsync-bench-rsync

START_NS=$(date +%s%N)
elapsed() { awk -v a="$START_NS" -v b="$(date +%s%N)" 'BEGIN { s = (b - a) / 1e9; printf "%d:%04.1f", s / 60, s % 60 }'; }
progress() { printf '[%s %s] %s\n' "${BENCH_NAME#scripts/}" "$(elapsed)" "$*" >&2; }
note() { printf '             %s\n' "$*" >&2; }
die() {
    printf '%s: %s\n' "$BENCH_NAME" "$*" >&2
    exit 1
}

bench_help() { # SCRIPT ARGS...
    local script=$1
    shift
    case "${1:-}" in
    -h | --help)
        sed -n '2,/^set -euo/p' "$script" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    "") ;;
    *)
        echo "$BENCH_NAME: no arguments expected (see $BENCH_NAME --help)" >&2
        exit 2
        ;;
    esac
}

whole_numbers() { # VAR...
    local v
    for v in "$@"; do
        [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
    done
}

bench_read_knobs() { # DEFAULT_DIR
    RUNS="${WPKGSYNC_BENCH_RUNS:-3}"
    WORK="${WPKGSYNC_BENCH_DIR:-$1}"
    KEEP="${WPKGSYNC_BENCH_KEEP:-0}"
    whole_numbers RUNS
    [ "$RUNS" -ge 1 ] || die "WPKGSYNC_BENCH_RUNS must be at least 1"
    case "$WORK" in
    /tmp/* | /tmp) die "WPKGSYNC_BENCH_DIR must not be below /tmp: the chroot needs root-owned folders" ;;
    /*) ;;
    *) die "WPKGSYNC_BENCH_DIR must be an absolute path: $WORK" ;;
    esac
    case "$WORK" in *[[:space:]]*) die "WPKGSYNC_BENCH_DIR must not contain spaces (sshd_config placeholders)" ;; esac
}

# --- prerequisites, binary --------------------------------------------------------

bench_prerequisites() {
    local missing=()
    [ "$(id -u)" -eq 0 ] || die "run as root: the private sshd chroots its account, and the page cache is dropped before each timed run"
    [ -x "$SSHD" ] || missing+=(openssh-server)
    command -v ssh >/dev/null && command -v sftp >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    command -v rsync >/dev/null || missing+=(rsync)
    [ -x /usr/bin/time ] || missing+=(time)
    if [ "${#missing[@]}" -gt 0 ]; then
        command -v apt-get >/dev/null || die "missing: ${missing[*]} (and no apt-get to install them)"
        progress "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
    command -v python3 >/dev/null || die "python3 is missing (the byte-counting relay and the data generator need it)"
}

bench_binary() {
    if [ -n "${WPKGSYNC_BENCH_BIN:-}" ]; then
        BIN="$WPKGSYNC_BENCH_BIN"
        progress "using $BIN (WPKGSYNC_BENCH_BIN)"
    else
        command -v cargo >/dev/null || die "cargo is missing: install Rust, or name a binary in WPKGSYNC_BENCH_BIN"
        progress "building (cargo build --release)"
        (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
        BIN="$ROOT/target/release/wpkgsync"
    fi
    [ -x "$BIN" ] || die "no executable $BIN"
}

# --- work folder, sshd, relay ---------------------------------------------------------

SSHD_PID=""
RELAY_PID=""
OK=0
bench_cleanup() {
    if [ -n "$RELAY_PID" ] && kill -0 "$RELAY_PID" 2>/dev/null; then
        kill "$RELAY_PID" 2>/dev/null || true
        wait "$RELAY_PID" 2>/dev/null || true
    fi
    RELAY_PID=""
    sshd_lib_stop "bench sshd"
    if [ "$OK" = 1 ] && [ "$KEEP" != 1 ]; then
        rm -rf "$WORK"
    elif [ -d "$WORK" ]; then
        printf '%s: the work folder %s was kept (%s)\n' "$BENCH_NAME" "$WORK" \
            "$([ "$OK" = 1 ] && echo "WPKGSYNC_BENCH_KEEP=1" || echo "for a look at what failed")" >&2
    fi
}

write_sshd_config() { # PORT
    sshd_lib_fill "$TEMPLATE" "$SSHD_CONFIG" "$1" "$WORK/etc/ssh_host_ed25519_key" \
        "$WORK/sshd.pid" "$WPK_USER" "$CHROOT" "$WORK/etc/authorized_keys.%u"
    # The template admits exactly one account, the locked-down one. rsync must
    # exec `rsync` on the server, which that account cannot (internal-sftp in a
    # chroot), so the bench admits a second, plain account for rsync and sftp on
    # the same sshd: AllowUsers names both. The template's `Match User` block
    # still applies to the wpkgsync account alone; the second one gets the
    # global settings (public keys only, no chroot, its shell).
    sed -i "s|^AllowUsers $WPK_USER\$|# $BENCH_NAME: AllowUsers widened to admit its plain rsync/sftp account too\nAllowUsers $WPK_USER $RSYNC_USER|" "$SSHD_CONFIG"
    grep -qx "AllowUsers $WPK_USER $RSYNC_USER" "$SSHD_CONFIG" || die "the template's AllowUsers line was not found in $SSHD_CONFIG"
}

bench_start() {
    local old_pid
    bench_prerequisites
    bench_binary
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM

    # Leftovers of an interrupted run: only the processes its pid files name, and
    # only when their command lines show they belong to this work folder.
    sshd_lib_stop_stale "$WORK/sshd.pid" "$WORK/etc/sshd_config" "bench run"
    if [ -f "$WORK/relay.pid" ]; then
        old_pid="$(cat "$WORK/relay.pid" 2>/dev/null || true)"
        if [ -n "$old_pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$old_pid/cmdline" | grep -q -- "bench-relay.py.*--stats $WORK/relay.stats"; then
            note "stopping the relay of an earlier bench run (pid $old_pid)"
            kill "$old_pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$WORK"
    umask 022
    mkdir -p "$WORK"
    chmod 0755 "$WORK"
    CHROOT="$WORK/chroot"
    REPO="$CHROOT/opt/updates"
    KEYS="$WORK/keys"
    GEN="$WORK/gen"     # data being prepared, outside the repository
    SAVED="$WORK/saved" # the clients' old copies, restored before each run
    mkdir -p "$REPO" "$CHROOT/opt/wpkgreports" "$WORK/etc" "$KEYS" "$GEN" "$SAVED" "$WORK/wpk" "$WORK/rsync" "$WORK/sftp"
    # A copy of the binary: a build finishing elsewhere during the run (cargo
    # replaces target/release/wpkgsync) must not change the program measured.
    mkdir -p "$WORK/bin"
    cp "$BIN" "$WORK/bin/wpkgsync"
    BIN_SOURCE=$BIN BIN="$WORK/bin/wpkgsync"
    note "measuring a copy of $BIN_SOURCE (sha256 $(sha256sum "$BIN" | cut -c1-12))"

    progress "starting a private sshd on 127.0.0.1 (accounts $WPK_USER: template, chroot; $RSYNC_USER: plain, for rsync and sftp)"
    sshd_lib_account "$WPK_USER"
    sshd_lib_account "$RSYNC_USER" /bin/sh
    # rsync runs `rsync --server` through the account's shell.
    [ "$(getent passwd "$RSYNC_USER" | cut -d: -f7)" = /bin/sh ] || usermod -s /bin/sh "$RSYNC_USER"
    chown "$WPK_USER:" "$CHROOT/opt/wpkgreports"

    ssh-keygen -q -N '' -t ed25519 -C "wpkgsync bench host" -f "$WORK/etc/ssh_host_ed25519_key"
    ssh-keygen -q -N '' -t ed25519 -C "wpkgsync bench client" -f "$KEYS/wpk_id"
    ssh-keygen -q -N '' -t ed25519 -C "wpkgsync bench rsync" -f "$KEYS/rsync_id"
    # AuthorizedKeysFile takes sshd's %u token: one file per account, so each key
    # opens only its own account.
    cp "$KEYS/wpk_id.pub" "$WORK/etc/authorized_keys.$WPK_USER"
    cp "$KEYS/rsync_id.pub" "$WORK/etc/authorized_keys.$RSYNC_USER"
    chmod 0644 "$WORK/etc/authorized_keys".*

    SSHD_CONFIG="$WORK/etc/sshd_config"
    sshd_lib_start 22300 22399 "$SSHD_CONFIG" "$WORK/sshd.log" write_sshd_config
    PORT=$SSHD_PORT
    note "sshd pid $SSHD_PID on 127.0.0.1:$PORT, config $SSHD_CONFIG, log $WORK/sshd.log"

    python3 "$RELAY" --target "$PORT" --port-file "$WORK/relay.port" --stats "$WORK/relay.stats" 2>>"$WORK/relay.log" &
    RELAY_PID=$!
    echo "$RELAY_PID" >"$WORK/relay.pid"
    for _ in $(seq 50); do
        [ -s "$WORK/relay.port" ] && break
        kill -0 "$RELAY_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$WORK/relay.port" ] || {
        cat "$WORK/relay.log" >&2
        die "the byte-counting relay did not start"
    }
    RPORT="$(cat "$WORK/relay.port")"
    note "byte-counting relay pid $RELAY_PID on 127.0.0.1:$RPORT"

    KH="$KEYS/known_hosts"
    {
        sshd_lib_known_host "$PORT" "$WORK/etc/ssh_host_ed25519_key.pub"
        sshd_lib_known_host "$RPORT" "$WORK/etc/ssh_host_ed25519_key.pub"
    } >"$KH"
    SSH_CMD="ssh -F /dev/null -i $KEYS/rsync_id -o IdentitiesOnly=yes -o UserKnownHostsFile=$KH -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes"

    ROWS="$WORK/rows.tsv"
    : >"$ROWS"
    progress "publisher key"
    "$BIN" keygen --out "$KEYS" >/dev/null || die "wpkgsync keygen failed"
}

# --- measuring ---------------------------------------------------------------------

DROP_NOTE=""
drop_caches() {
    sync
    if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        if [ -z "$DROP_NOTE" ]; then
            DROP_NOTE="the page cache could not be dropped (/proc/sys/vm/drop_caches not writable): runs after the first are warm"
            progress "note: $DROP_NOTE"
        fi
    fi
}

# run_client NAME DROP CMD...: runs CMD under /usr/bin/time -v, after dropping
# the page cache when DROP is 1. Sets T_SECS (wall time around the process) and
# T_RSS_MIB (its peak RSS; for rsync and sftp the largest of their processes).
# Stops the bench when CMD exits non-zero.
# shellcheck disable=SC2034 # T_SECS and T_RSS_MIB are for the caller
T_SECS=0
T_RSS_MIB=0
# shellcheck disable=SC2034
run_client() {
    local name=$1 drop=$2 t0 t1 rc=0
    shift 2
    [ "$drop" = 1 ] && drop_caches
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/client.out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    if [ "$rc" -ne 0 ]; then
        sed 's/^/    /' "$WORK/client.out" >&2
        die "$name exited $rc: $*"
    fi
    T_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    T_RSS_MIB=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/time.txt")
}

# make_client DIR [PACKAGES]: a wpkgsync client, DIR/store, DIR/state and two
# INIs, direct.ini (sshd's port) and relay.ini (the relay's port). PACKAGES is
# the INI's `packages` value [all].
make_client() {
    local c=$1 packages=${2:-all} ini
    mkdir -p "$c"
    for ini in direct relay; do
        cat >"$c/$ini.ini" <<INI
; written by $BENCH_NAME
[server]
remote = $WPK_USER@127.0.0.1
port = $([ "$ini" = direct ] && echo "$PORT" || echo "$RPORT")
path = /opt/updates
identity = $KEYS/wpk_id
known_hosts = $KH

[sync]
local = $c/store
state = $c/state
packages = $packages
timeout = 60

[trust]
publisher_key = $KEYS/publisher.pem
INI
    done
}
wpk_summary() { grep -o 'version [0-9]*: fetched.*' "$1/state/wpkgsync.log" | tail -n 1; }
# wpk NAME CLIENT direct|relay DROP
wpk() {
    run_client "wpkgsync ($1)" "$4" "$BIN" --config "$2/$3.ini" --fast --quiet
    if ! grep -q "exit 0\$" <(tail -n 1 "$2/state/wpkgsync.log"); then
        tail -n 5 "$2/state/wpkgsync.log" >&2
        die "wpkgsync ($1): its log does not end with exit 0"
    fi
}
# rsy NAME DEST direct|relay DROP
rsy() {
    local port=$PORT
    [ "$3" = relay ] && port=$RPORT
    run_client "rsync ($1)" "$4" rsync -a --delete --exclude=/.wpkgsync -e "$SSH_CMD -p $port" \
        "$RSYNC_USER@127.0.0.1:$REPO/" "$2/"
}
# sftp_get NAME REMOTE LOCAL DROP (always direct)
sftp_get() {
    printf 'get %s %s\n' "$2" "$3" >"$WORK/sftp.batch"
    run_client "sftp ($1)" "$4" sftp -q -b "$WORK/sftp.batch" -F /dev/null -P "$PORT" -i "$KEYS/rsync_id" \
        -o IdentitiesOnly=yes -o UserKnownHostsFile="$KH" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o BatchMode=yes "$RSYNC_USER@127.0.0.1"
}

# relay_total: bytes the relay carried so far (both directions), once no
# connection is open any more.
relay_total() {
    local line deadline=$((SECONDS + 15))
    while :; do
        line="$(cat "$WORK/relay.stats")"
        case "$line" in open=0\ *) break ;; esac
        [ "$SECONDS" -lt "$deadline" ] || die "the relay still has a connection open: $line"
        sleep 0.05
    done
    awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } } END { printf "%d\n", v["up"] + v["down"] }' <<<"$line"
}
# measure_bytes CMD...: runs CMD (a wpk/rsy call through the relay); BYTES
# gets what the relay carried meanwhile.
# shellcheck disable=SC2034 # BYTES is for the caller
BYTES=0
# shellcheck disable=SC2034
measure_bytes() {
    local before after
    before=$(relay_total)
    "$@"
    after=$(relay_total)
    BYTES=$((after - before))
}

# The old copies. A client that synced last time finds every file the sync
# left alone exactly as it was: same inode, same change time. wpkgsync's store
# index trusts a file only with the identity it recorded (a copy made with
# `cp -a` is a new inode, whose content it hashes again), so a restore must not
# touch what the timed sync will not change: rsync rewrites only the files
# that differ (by size and mtime) from the saved copy, and deletes the ones
# the sync added. Only the files the sync itself changed or removed are put
# back as new inodes, so that the next run re-hashes those few. wpkgsync's
# small state folder (the store index among it) is copied whole. rsync's own
# copy gets the same treatment.
save_client() { # CLIENT SAVED_CLIENT
    rm -rf "$2"
    mkdir -p "$2"
    cp -a "$1/store" "$1/state" "$2/"
}
restore_client() { # SAVED_CLIENT CLIENT
    mkdir -p "$2/store"
    rsync -a --delete "$1/store/" "$2/store/"
    rm -rf "$2/state"
    cp -a "$1/state" "$2/state"
}
save_copy() { # COPY SAVED_COPY
    rm -rf "$2"
    cp -a "$1" "$2"
}
restore_copy() { # SAVED_COPY COPY
    mkdir -p "$2"
    rsync -a --delete "$1/" "$2/"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }
calc() { awk "BEGIN { $1 }"; }
ratio() { calc "printf \"%.4f\", $1 / $2"; } # A B: A/B
times_x() { calc "printf \"%.2fx\", $1"; }    # a ratio as shown in the table
mb() { calc "printf \"%.2f MB\", $1 / 1e6"; }
kib() { calc "printf \"%.1f KiB\", $1 / 1024"; }
verdict() { calc "print (($1) ? \"PASS\" : \"MISS\")"; }

check_same() { # NAME COPY
    diff -r --exclude=.wpkgsync "$REPO" "$2" >"$WORK/diff.out" 2>&1 || {
        head -n 20 "$WORK/diff.out" >&2
        die "$1: the copy $2 differs from the repository"
    }
}

# publish: signs REPO; PUBLISHED gets publish's last line, T_SECS its wall time.
PUBLISHED=""
# shellcheck disable=SC2034 # T_SECS is for the caller
publish() {
    local out t0 t1
    t0=$(date +%s%N)
    out="$("$BIN" publish --repo "$REPO" --key "$KEYS/publisher-private.pem" 2>&1)" || {
        printf '%s\n' "$out" >&2
        die "wpkgsync publish failed"
    }
    t1=$(date +%s%N)
    T_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    PUBLISHED="$(printf '%s\n' "$out" | tail -n 1)"
    note "$PUBLISHED"
}

# --- the table ------------------------------------------------------------------------------

row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; } # scenario measure wpkgsync reference ratio target result

os_name() {
    # shellcheck source=/dev/null
    if [ -r /etc/os-release ]; then (. /etc/os-release && echo "$PRETTY_NAME"); else uname -s; fi
}
# bench_environment: one line naming the machine, the tools and the build.
bench_environment() {
    local commit
    commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit + local changes"; fi
    [ -n "${WPKGSYNC_BENCH_BIN:-}" ] && commit="$BIN_SOURCE (WPKGSYNC_BENCH_BIN, sha256 $(sha256sum "$BIN" | cut -c1-12); scripts at $commit)"
    printf '%s on %s (%s cores, %s), %s; %s; wpkgsync %s.\n' "$BENCH_NAME" \
        "$(os_name)" "$(nproc)" "$(uname -r)" \
        "$(ssh -V 2>&1 | cut -d, -f1)" "$(rsync --version | head -n 1 | awk '{ print "rsync " $3 }')" "$commit"
}
print_table() { # the rows of ROWS as a Markdown table
    awk -F'\t' '
        BEGIN { split("scenario|measure|wpkgsync|reference|ratio|target|result", h, "|"); for (i = 1; i <= 7; i++) { cell[0, i] = h[i]; w[i] = length(h[i]) } }
        { n++; for (i = 1; i <= 7; i++) { cell[n, i] = $i; l = length($i); if (l > w[i]) w[i] = l } }
        function line(r,   i, s) { s = "|"; for (i = 1; i <= 7; i++) s = s sprintf(" %-" w[i] "s |", cell[r, i]); print s }
        END {
            line(0)
            s = "|"; for (i = 1; i <= 7; i++) { d = ""; for (j = 0; j < w[i] + 2; j++) d = d "-"; s = s d "|" } print s
            for (r = 1; r <= n; r++) line(r)
        }' "$ROWS"
}
