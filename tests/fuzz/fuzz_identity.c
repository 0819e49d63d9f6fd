/*
 * fuzz_identity — a child's identity as a peer sends it: the ChildIdentity
 * decoder, the rules of every field, the normal forms and the tokens the
 * broker makes of whatever passes; and the same bytes as typed text to
 * each normaliser (UPN, postcode, date, name, NYSIIS).
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ehx_pseudokey *key;

static void
as_text(const uint8_t *data, size_t size)
{
	char *s, upn[EHX_UPN_LEN + 1], pc[EHX_POSTCODE_LEN + 1];
	char words[2 * EHX_MAX_PERSON_NAME + 1], code[EHX_PHONETIC_LEN + 1];
	const char *w = words;
	int y, m, d, n;

	if ((s = malloc(size + 1)) == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)ehx_upn_valid(s);
	(void)ehx_upn_normalise(s, upn);
	(void)ehx_postcode_normalise(s, pc);
	if (ehx_date_parse(s, &y, &m, &d) == 0)
		(void)ehx_days_from_civil(y, m, d);
	ehx_phonetic(s, code);
	(void)ehx_given_canonical(s);
	if ((n = ehx_name_words(s, words, sizeof(words))) > 0)
		for (int i = 0; i < n; i++, w += strlen(w) + 1) {
			ehx_phonetic(w, code);
			(void)ehx_given_canonical(w);
		}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char raw[32] = { 1, 2, 3 };
	static struct ehx_tokens t;
	Ehx__ChildIdentity *id;
	char why[256];

	if (key == NULL && ehx_pseudokey_raw(raw, &key) != 0)
		return 0;
	as_text(data, size);
	if (size > 4096 ||
	    (id = ehx__child_identity__unpack(NULL, size, data)) == NULL)
		return 0;
	if (ehx_validate_identity(id, 1796731200000LL, why, sizeof(why)) == 0)
		(void)ehx_identity_tokens(key, "nyp-police", id, &t);
	/* the tokens of what fails the rules too: they must not crash */
	(void)ehx_identity_tokens(key, NULL, id, &t);
	ehx__child_identity__free_unpacked(id, NULL);
	return 0;
}
