/*
 * nhs.c — validation of NHS numbers, checked at the command line, in the
 * agent and again at the broker, so a mistyped number never reaches a
 * child's record.
 */
#include <stdio.h>
#include <string.h>

#include "ehx/err.h"
#include "ehx/nhs.h"

bool
ehx_nhs_valid(const char *s)
{
	int sum = 0, check;

	if (s == NULL || strlen(s) != EHX_NHS_LEN)
		return false;
	for (int i = 0; i < EHX_NHS_LEN; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	for (int i = 0; i < 9; i++)
		sum += (s[i] - '0') * (10 - i);
	check = 11 - sum % 11;
	if (check == 11)
		check = 0;
	return check != 10 && check == s[9] - '0';
}

int
ehx_nhs_normalise(const char *in, char out[EHX_NHS_LEN + 1])
{
	size_t n = 0, len = strlen(in);

	out[0] = '\0';
	if (len == EHX_NHS_LEN) {
		memcpy(out, in, EHX_NHS_LEN + 1);
	} else if (len == 12 && (in[3] == ' ' || in[3] == '-') &&
	    in[7] == in[3]) {
		for (size_t i = 0; i < len; i++)
			if (i != 3 && i != 7)
				out[n++] = in[i];
		out[n] = '\0';
	} else
		return EHX_ERR_INVALID_NHS_NUMBER;
	if (!ehx_nhs_valid(out)) {
		out[0] = '\0';
		return EHX_ERR_INVALID_NHS_NUMBER;
	}
	return 0;
}

char *
ehx_nhs_format(char out[13], const char *nhs)
{
	snprintf(out, 13, "%.3s %.3s %.4s", nhs, nhs + 3, nhs + 6);
	return out;
}
