/*
 * nhs.h — NHS numbers, the child identifier: 10 digits whose last is a
 * modulus-11 check digit over the first nine (weights 10 … 2).
 */
#ifndef EHX_NHS_H
#define EHX_NHS_H

#include <stdbool.h>

#define EHX_NHS_LEN 10

/* True when s is exactly 10 digits with a correct check digit. */
bool ehx_nhs_valid(const char *s);

/*
 * Accept what people type — "943 476 5919", "943-476-5919" — and write the
 * 10 digits and a NUL into out. Spaces and hyphens may separate the groups
 * 3-3-4 only. Returns 0 or EHX_ERR_INVALID_NHS_NUMBER.
 */
int ehx_nhs_normalise(const char *in, char out[EHX_NHS_LEN + 1]);

/* "943 476 5919" into out (13 bytes) from 10 valid digits. Returns out. */
char *ehx_nhs_format(char out[13], const char *nhs);

#endif
