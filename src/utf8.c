/*
 * utf8: strict decoding.  See utf8.h.
 */
#include "utf8.h"

int utf8_decode(const unsigned char *p, const unsigned char *end, unsigned *cp_out)
{
	unsigned c = *p, cp;
	int extra;

	if (c < 0x80) {
		*cp_out = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		extra = 1;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		extra = 2;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		extra = 3;
		cp = c & 0x07;
	} else {
		return -1;
	}
	if (end - p <= extra)
		return -1;
	for (int i = 1; i <= extra; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return -1;
	*cp_out = cp;
	return extra + 1;
}

int utf8_count(const char *s, size_t len, size_t *count)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t n = 0;
	unsigned cp;

	while (p < end) {
		int step = utf8_decode(p, end, &cp);
		if (step < 0)
			return -1;
		p += step;
		n++;
	}
	*count = n;
	return 0;
}

static int is_continuation(char c)
{
	return ((unsigned char)c & 0xC0) == 0x80;
}

bool utf8_is_white_space(unsigned cp)
{
	return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (!is_continuation(s[i]))
			n++;
	return n;
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t count = 0;

	for (size_t i = 0; i < len; i++)
		if (!is_continuation(s[i]) && count++ == max)
			return i;
	return len;
}
