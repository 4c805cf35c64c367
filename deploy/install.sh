#!/bin/sh
# OISP Sensor installer: the release binary for this OS/arch, checked against the release's SHA256SUMS,
# the systemd service for the chosen capture mode, the `oisp` user where that mode runs as one, a default
# /etc/oisp/config.toml (kept if present), and the service enabled and started. Running it again gives
# the same result (idempotent); --uninstall reverses it and keeps captured data unless --purge.
#
#   curl -fsSL https://github.com/oisp/oisp-sensor/releases/latest/download/install.sh | sudo sh -s -- --mode ebpf
#   sudo sh deploy/install.sh --from dist/ --mode proxy          # a local build (a directory or a binary)
#   sudo sh install.sh --uninstall [--purge]
#
# Options:
#   --from URL|DIR|FILE  release to install: a URL or directory holding the binary, SHA256SUMS and the
#                        units; or the binary itself (SHA256SUMS, units and oisp.toml beside it)
#                        (default: the latest GitHub release)
#   --mode ebpf|proxy    ebpf: oisp.service, root with only the BPF capabilities (Linux >= 5.8, BTF);
#                        proxy: oisp-proxy.service as user oisp, apps set HTTPS_PROXY (default: ebpf when
#                        /sys/kernel/btf/vmlinux exists, else proxy)
#   --root DIR           install under DIR instead of / (packaging, tests): enables the unit there, never
#                        starts anything
#   --no-start           install and enable, do not start
#   --uninstall          stop, disable and remove the service, binary, user and unchanged default config
#   --purge              with --uninstall: also delete /var/lib/oisp (events, CA, spools) and /etc/oisp
set -eu

DEFAULT_FROM="https://github.com/oisp/oisp-sensor/releases/latest/download"
from="$DEFAULT_FROM"
mode=""
root=""
prefix=/usr/local # the units name /usr/local/bin/oisp
start=1
action=install
purge=0

say() { printf 'oisp-install: %s\n' "$*"; }
die() {
	printf 'oisp-install: error: %s\n' "$*" >&2
	exit 1
}
need_value() { if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi; }

while [ "$#" -gt 0 ]; do
	case "$1" in
	--from)
		need_value "$@"
		from="$2"
		shift 2
		;;
	--mode)
		need_value "$@"
		mode="$2"
		shift 2
		;;
	--root)
		need_value "$@"
		root="${2%/}"
		shift 2
		;;
	--no-start)
		start=0
		shift
		;;
	--uninstall)
		action=uninstall
		shift
		;;
	--purge)
		purge=1
		shift
		;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown option $1 (see --help)" ;;
	esac
done
[ "$purge" = 0 ] || [ "$action" = uninstall ] || die "--purge goes with --uninstall"
if [ -n "$root" ]; then
	case "$root" in /*) ;; *) root="$(pwd)/$root" ;; esac
fi

bindir="$root$prefix/bin"
unitdir="$root/etc/systemd/system"
sysusersdir="$root/etc/sysusers.d"
confdir="$root/etc/oisp"
statedir="$root/var/lib/oisp"
sharedir="$root$prefix/share/oisp"

# systemd is the service manager here if it booted the machine (sd_booted(3)); with --root never "here".
systemd_running() { [ -z "$root" ] && [ -d /run/systemd/system ]; }
has() { command -v "$1" >/dev/null 2>&1; }
systemctl_root() {
	if [ -n "$root" ]; then systemctl --root="$root" "$@"; else systemctl "$@"; fi
}

# ---------------------------------------------------------------- uninstall
if [ "$action" = uninstall ]; then
	for unit in oisp.service oisp-proxy.service; do
		[ -f "$unitdir/$unit" ] || continue
		if systemd_running; then
			systemctl disable --now "$unit" >/dev/null 2>&1 || true
		elif has systemctl; then
			systemctl_root disable "$unit" >/dev/null 2>&1 || true
		fi
		rm -f "$unitdir/$unit"
		say "removed $unit"
	done
	systemd_running && systemctl daemon-reload
	rm -f "$bindir/oisp" "$sysusersdir/oisp.conf"
	rmdir "$sysusersdir" 2>/dev/null || true
	# The default config goes if unchanged; an edited one is the admin's and stays (unless --purge).
	if [ -f "$confdir/config.toml" ] && [ -f "$sharedir/oisp.toml" ] && cmp -s "$confdir/config.toml" "$sharedir/oisp.toml"; then
		rm -f "$confdir/config.toml"
		rmdir "$confdir" 2>/dev/null || true
	fi
	rm -rf "$sharedir"
	if grep -q '^oisp:' "$root/etc/passwd" 2>/dev/null && has userdel; then
		if [ -n "$root" ]; then userdel --root "$root" oisp; else userdel oisp; fi
		say "removed user oisp"
	fi
	if [ "$purge" = 1 ]; then
		rm -rf "$statedir" "$confdir"
		say "purged $statedir and $confdir"
	else
		[ -d "$statedir" ] && say "kept captured data in $statedir (--purge deletes it)"
		[ -d "$confdir" ] && say "kept $confdir (edited config; --purge deletes it)"
	fi
	say "uninstalled"
	exit 0
fi

# ---------------------------------------------------------------- install
os=$(uname -s)
arch=$(uname -m)
case "$os/$arch" in
Linux/x86_64 | Linux/amd64) asset=oisp ;;
Darwin/arm64) asset=oisp-darwin-arm64 ;;
Darwin/x86_64) asset=oisp-darwin-x64 ;;
*) die "no release binary for $os/$arch (releases carry linux-x64, darwin-arm64, darwin-x64)" ;;
esac

if [ -z "$mode" ]; then
	if [ "$os" = Linux ] && [ -r /sys/kernel/btf/vmlinux ]; then mode=ebpf; else mode=proxy; fi
fi
case "$mode" in
ebpf) unit=oisp.service other=oisp-proxy.service ;;
proxy) unit=oisp-proxy.service other=oisp.service ;;
*) die "--mode: expected ebpf or proxy, got $mode" ;;
esac
[ "$mode" = proxy ] || [ "$os" = Linux ] || die "--mode ebpf needs Linux"
[ -n "$root" ] || [ "$(id -u)" = 0 ] || die "run as root (sudo), or pass --root DIR"

work=$(mktemp -d "${TMPDIR:-/tmp}/oisp-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# fetch NAME: the release file NAME into $work, from a URL, a directory, or beside a given binary.
fetch() {
	case "$from" in
	http://* | https://*)
		if has curl; then
			curl -fsSL --retry 3 -o "$work/$1" "$from/$1" || die "cannot download $from/$1"
		elif has wget; then
			wget -q -O "$work/$1" "$from/$1" || die "cannot download $from/$1"
		else
			die "neither curl nor wget is installed"
		fi
		;;
	*)
		if [ -d "$from" ]; then src="$from/$1"; else src="$(dirname "$from")/$1"; fi
		[ "$1" = "$asset" ] && [ -f "$from" ] && src="$from"
		[ -f "$src" ] || die "$src is missing"
		cp "$src" "$work/$1"
		;;
	esac
}

sha256() {
	if has sha256sum; then
		sha256sum "$1" | cut -d' ' -f1
	elif has shasum; then
		shasum -a 256 "$1" | cut -d' ' -f1
	else
		die "neither sha256sum nor shasum is installed"
	fi
}

# verify NAME: the file's hash must be the one SHA256SUMS lists for NAME (the binary is checked under
# its release name even when --from gives it under another).
verify() {
	want=$(awk -v n="$1" '{ f = $2; sub(/^\*/, "", f) } f == n { print $1; exit }' "$work/SHA256SUMS")
	[ -n "$want" ] || die "SHA256SUMS lists no $1"
	got=$(sha256 "$work/$1")
	[ "$want" = "$got" ] || die "$1: checksum mismatch (SHA256SUMS says $want, the file is $got); nothing installed"
}

fetch SHA256SUMS
files="$asset"
if [ "$os" = Linux ]; then files="$files $unit oisp.sysusers oisp.toml"; fi
for f in $files; do
	fetch "$f"
	verify "$f"
done
say "verified $files against SHA256SUMS"
chmod 0755 "$work/$asset"
"$work/$asset" --version >/dev/null 2>&1 || die "$asset does not run on this machine"

# copy_if_changed SRC DEST MODE: true (0) when DEST changed.
copy_if_changed() {
	if [ -f "$2" ] && cmp -s "$1" "$2"; then return 1; fi
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2.new"
	chmod "$3" "$2.new"
	mv -f "$2.new" "$2"
	return 0
}

changed=0
copy_if_changed "$work/$asset" "$bindir/oisp" 0755 && changed=1
say "binary: $bindir/oisp ($("$bindir/oisp" --version | head -n 1))"

if [ "$os" != Linux ]; then
	say "no systemd on $os: run \`oisp up --web\` yourself (docs/config.md for --config)"
	exit 0
fi

# Default settings: installed once, never overwritten (the admin's edits win); a copy of the default
# lets --uninstall tell an untouched file from an edited one.
copy_if_changed "$work/oisp.toml" "$sharedir/oisp.toml" 0644 || true
if [ ! -f "$confdir/config.toml" ]; then
	mkdir -p "$confdir"
	cp "$work/oisp.toml" "$confdir/config.toml"
	chmod 0644 "$confdir/config.toml"
	say "config: $confdir/config.toml (default)"
else
	say "config: $confdir/config.toml (kept)"
fi

if [ "$mode" = proxy ]; then
	copy_if_changed "$work/oisp.sysusers" "$sysusersdir/oisp.conf" 0644 || true
	if ! grep -q '^oisp:' "$root/etc/passwd" 2>/dev/null; then
		if has systemd-sysusers; then
			if [ -n "$root" ]; then systemd-sysusers --root="$root" oisp.conf 2>&1; else systemd-sysusers oisp.conf 2>&1; fi
		elif has useradd; then
			if [ -n "$root" ]; then set -- --root "$root"; else set --; fi
			useradd "$@" --system --user-group --home-dir /var/lib/oisp --no-create-home --shell /usr/sbin/nologin --comment "OISP Sensor" oisp
		else
			die "cannot create the oisp user: neither systemd-sysusers nor useradd is installed"
		fi
		say "created system user oisp"
	fi
fi

copy_if_changed "$work/$unit" "$unitdir/$unit" 0644 && changed=1
# One mode at a time: the other unit goes (the data directory is shared).
if [ -f "$unitdir/$other" ]; then
	if systemd_running; then systemctl disable --now "$other" >/dev/null 2>&1 || true; else systemctl_root disable "$other" >/dev/null 2>&1 || true; fi
	rm -f "$unitdir/$other"
	changed=1
	say "removed $other (switched to $mode mode)"
fi

if ! has systemctl; then
	say "installed; no systemctl here: start \`OISP_HOME=/var/lib/oisp $prefix/bin/oisp up --config /etc/oisp/config.toml\` with your service manager"
	exit 0
fi
if ! systemd_running; then
	systemctl_root enable "$unit" >/dev/null 2>&1 || die "systemctl enable $unit failed"
	say "enabled $unit under ${root:-/}; systemd is not running there, so it starts at the next boot"
	exit 0
fi
systemctl daemon-reload
systemctl enable "$unit" >/dev/null 2>&1
if [ "$start" = 0 ]; then
	say "enabled $unit (not started: --no-start)"
elif [ "$changed" = 1 ] || ! systemctl is-active --quiet "$unit"; then
	systemctl restart "$unit" || die "$unit failed to start: journalctl -u $unit"
	say "started $unit"
else
	say "$unit already running this version"
fi
say "check it with: OISP_HOME=/var/lib/oisp $prefix/bin/oisp status"
