/*
 * fuzz_utf8: strict UTF-8 decoding, against the grammar of RFC 3629 §4.
 *
 * The reference below is written from the RFC's ABNF (lead byte ranges and
 * the range each lead allows for the second byte), a different shape from
 * utf8.c's decode-then-check, so the two agreeing on every input means
 * both read the RFC the same way: same validity at every offset, same code
 * point, same length, same count; and the same when `end` cuts a sequence
 * short.  (libFuzzer hands the input over in a buffer of exactly its size,
 * so ASan sees any read past the real end.)
 */
#include "harness.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 3629 §4: UTF8-2 .. UTF8-4 as (lead range, second-byte range, tails). */
static const struct {
	unsigned char lo, hi;   /* lead byte */
	unsigned char lo2, hi2; /* second byte */
	int tails;              /* continuation bytes after the lead */
} grammar[] = {
    {0xC2, 0xDF, 0x80, 0xBF, 1}, {0xE0, 0xE0, 0xA0, 0xBF, 2}, {0xE1, 0xEC, 0x80, 0xBF, 2},
    {0xED, 0xED, 0x80, 0x9F, 2}, {0xEE, 0xEF, 0x80, 0xBF, 2}, {0xF0, 0xF0, 0x90, 0xBF, 3},
    {0xF1, 0xF3, 0x80, 0xBF, 3}, {0xF4, 0xF4, 0x80, 0x8F, 3},
};

static int reference_decode(const unsigned char *p, size_t left, unsigned *cp)
{
	static const unsigned lead_mask[4] = {0, 0x1F, 0x0F, 0x07};

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	for (size_t g = 0; g < sizeof grammar / sizeof grammar[0]; g++) {
		int t = grammar[g].tails;
		if (p[0] < grammar[g].lo || p[0] > grammar[g].hi)
			continue;
		if (left < (size_t)t + 1 || p[1] < grammar[g].lo2 || p[1] > grammar[g].hi2)
			return -1;
		*cp = p[0] & lead_mask[t];
		for (int i = 1; i <= t; i++) {
			if (p[i] < 0x80 || p[i] > 0xBF)
				return -1;
			*cp = *cp << 6 | (p[i] & 0x3F);
		}
		return t + 1;
	}
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t count = 0, expect = 0, at = 0;
	bool valid = true;

	for (size_t i = 0; i < size; i++) {
		unsigned cp = 0, ref_cp = 0;
		int got = utf8_decode(data + i, data + size, &cp);
		int ref = reference_decode(data + i, size - i, &ref_cp);

		if (got != ref || (got > 0 && cp != ref_cp))
			fuzz_fail("offset %zu: decoder %d (U+%04X), RFC 3629 %d (U+%04X)", i, got,
			          cp, ref, ref_cp);
		/* The same sequence cut short by `end`: refused exactly when the
		 * grammar needs the bytes past it. */
		for (size_t k = 1; k < 4 && i + k < size; k++) {
			int cut = utf8_decode(data + i, data + i + k, &cp);
			int ref_cut = reference_decode(data + i, k, &ref_cp);
			if (cut != ref_cut)
				fuzz_fail("offset %zu, %zu bytes left: decoder %d, RFC 3629 %d", i,
				          k, cut, ref_cut);
		}
		/* Walk the string as utf8_count does, to predict its answer. */
		if (i == at && valid) {
			if (ref < 0)
				valid = false;
			else {
				at += (size_t)ref;
				expect++;
			}
		}
	}
	if ((utf8_count((const char *)data, size, &count) == 0) != valid ||
	    (valid && count != expect))
		fuzz_fail("utf8_count disagrees with the grammar");
	return 0;
}
