# Turn a list file (one entry per line, "#!" lines are comments) into the
# definition of a C string, static const char NAME[] (awk -v name=NAME),
# one entry per line, each ending in "\n".  Every byte but letters and
# digits becomes an octal escape, so no entry can end the literal or form
# an escape, trigraph or line splice.
BEGIN {
	for (i = 1; i < 256; i++)
		ord[sprintf("%c", i)] = i
	printf "static const char %s[] =\n", name
}
END { print ";" }
/^#!/ { next }
{
	s = ""
	for (i = 1; i <= length($0); i++) {
		c = substr($0, i, 1)
		s = s (c ~ /[A-Za-z0-9]/ ? c : sprintf("\\%03o", ord[c]))
	}
	printf "\"%s\\n\"\n", s
}
