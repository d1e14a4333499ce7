#!/bin/sh
# Integrate the AriusMonitor agent bundle with this endpoint: the ariusmonitor group and user,
# start at boot (systemd, sysv /etc/init.d, or Slackware's rc.d), sudoers and cron files.
# Never starts the agent. Idempotent: what exists already is left alone (our own files are
# brought up to date), and a second run prints nothing.
# Prints one line per change: "created: PATH", "changed: PATH", "user: ariusmonitor",
# "group: ariusmonitor". Errors: one line on stderr, exit 1.
set -u

NAME=ariusmonitor
BASE=/ariusmonitor
FILES=$BASE/utilities

fail() {
    printf 'setup.sh: %s\n' "$*" >&2
    exit 1
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# install_file SOURCE TARGET MODE: put our file in place atomically when missing or different
install_file() {
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        chmod "$3" "$2" || fail "cannot set the mode of $2"
        return 0
    fi
    if [ -e "$2" ]; then state=changed; else state=created; fi
    tmp="$2.setup-$$"
    if ! { cp "$1" "$tmp" && chmod "$3" "$tmp" && mv -f "$tmp" "$2"; }; then
        rm -f "$tmp"
        fail "cannot write $2"
    fi
    printf '%s: %s\n' "$state" "$2"
}

ensure_group() {
    grep -q "^$NAME:" /etc/group && return 0
    if have groupadd; then
        groupadd -r "$NAME" >/dev/null || fail "groupadd $NAME failed"
    elif have addgroup; then
        addgroup -S "$NAME" >/dev/null || fail "addgroup $NAME failed"
    else
        fail "neither groupadd nor addgroup found to create group $NAME"
    fi
    printf 'group: %s\n' "$NAME"
}

ensure_user() {
    grep -q "^$NAME:" /etc/passwd && return 0
    if have useradd; then
        useradd -r -M -d "$BASE" -s /bin/false -g "$NAME" "$NAME" >/dev/null || fail "useradd $NAME failed"
    elif have adduser; then
        adduser -S -D -H -h "$BASE" -s /bin/false -G "$NAME" "$NAME" >/dev/null || fail "adduser $NAME failed"
    else
        fail "neither useradd nor adduser found to create user $NAME"
    fi
    printf 'user: %s\n' "$NAME"
}

# rc_links: the sysv runlevel links of our service, one per line
rc_links() {
    for link in /etc/rc?.d/[SK][0-9][0-9]"$NAME"; do
        [ -L "$link" ] && printf '%s\n' "$link"
    done
    return 0
}

boot_systemd() {
    unit=/etc/systemd/system/$NAME.service
    wants=/etc/systemd/system/multi-user.target.wants/$NAME.service
    [ -e "$wants" ] && had_wants=1 || had_wants=0
    install_file "$FILES/$NAME.service" "$unit" 644
    systemctl daemon-reload >/dev/null 2>&1 || fail "systemctl daemon-reload failed"
    systemctl enable "$NAME.service" >/dev/null 2>&1 || fail "systemctl enable $NAME.service failed"
    [ "$had_wants" = 0 ] && [ -e "$wants" ] && printf 'created: %s\n' "$wants"
    return 0
}

boot_sysv() {
    install_file "$FILES/$NAME.init" "/etc/init.d/$NAME" 755
    have update-rc.d || return 0
    before=$(rc_links)
    update-rc.d "$NAME" defaults >/dev/null 2>&1 || fail "update-rc.d $NAME defaults failed"
    for link in $(rc_links); do
        case "
$before
" in
            *"
$link
"*) ;;
            *) printf 'created: %s\n' "$link" ;;
        esac
    done
}

boot_slackware() {
    install_file "$FILES/$NAME.init" "/etc/rc.d/rc.$NAME" 755
    rc_local=/etc/rc.d/rc.local
    if [ -f "$rc_local" ] && grep -q "^# BEGIN ARIUSMONITOR" "$rc_local"; then
        return 0
    fi
    if [ -e "$rc_local" ]; then
        state=changed
    else
        state=created
        { printf '#!/bin/sh\n' > "$rc_local" && chmod 755 "$rc_local"; } || fail "cannot write $rc_local"
    fi
    printf '%s\n' "# BEGIN ARIUSMONITOR" "if [ -x /etc/rc.d/rc.$NAME ]; then" "  /etc/rc.d/rc.$NAME start" "fi" \
        "# END ARIUSMONITOR" >> "$rc_local" || fail "cannot write $rc_local"
    printf '%s: %s\n' "$state" "$rc_local"
}

main() {
    [ "$(id -u)" = 0 ] || fail "must run as root"
    [ -d "$FILES" ] || fail "$FILES missing: extract the bundle first"
    ensure_group
    ensure_user
    if [ -d /run/systemd/system ]; then
        boot_systemd
    elif [ -d /etc/init.d ]; then
        boot_sysv
    elif [ -d /etc/rc.d ]; then
        boot_slackware
    else
        fail "no init system found (systemd, /etc/init.d or /etc/rc.d): cannot start the agent at boot"
    fi
    if [ -d /etc/sudoers.d ]; then
        if have visudo; then
            visudo -c -q -f "$FILES/$NAME.sudoers" >/dev/null 2>&1 || fail "visudo rejects $FILES/$NAME.sudoers"
        fi
        install_file "$FILES/$NAME.sudoers" "/etc/sudoers.d/$NAME" 440
    fi
    if [ -d /etc/cron.d ]; then
        install_file "$FILES/$NAME-check-service.cron" "/etc/cron.d/$NAME-check-service" 644
    fi
}

main "$@"
