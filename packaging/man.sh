#!/usr/bin/env bash
# Turn a command's -help text (on stdin) into a man page (on stdout), so that
# the man page says exactly what -help says.
# Usage: packaging/man.sh NAME SECTION VERSION "one-line summary" <help.txt
set -euo pipefail
name=$1 section=$2 version=$3 summary=$4
upper=$(tr '[:lower:]' '[:upper:]' <<<"$name")
cat <<EOT
.TH $upper $section "" "latchkey $version" "System Administration"
.SH NAME
$name \\- $summary
.SH DESCRIPTION
.nf
EOT
# Backslashes first; a line starting with . or ' would be a request.
sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
cat <<EOT
.fi
.SH SEE ALSO
/usr/share/doc/$name/README.md
EOT
