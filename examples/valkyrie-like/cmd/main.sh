#!@busybox@/bin/sh
# @name@: reports who and where it runs, and the data it was given.
bb=@busybox@/bin/busybox
echo "@name@: uid=$($bb id -u) user=$($bb id -un) pwd=$($bb pwd) tz=${TZ:-unset}"
info="$HOME/.valkyrie_info/rippkgs-24.11.sqlite"
if [ -f "$info" ]; then
  echo "@name@: data $($bb stat -c '%U %a' "$info"): $($bb cat "$info")"
else
  echo "@name@: no data at $info"
fi
