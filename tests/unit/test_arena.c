/*
 * test_arena — the per-request bump allocator (lib/arena.c): alignment,
 * the limit, reset and reuse, large allocations, and protobuf-c unpacking
 * through it.
 */
#include "testutil.h"

#include <stdalign.h>

#include "ehx.pb-c.h"
#include "ehx/arena.h"

#define KiB 1024
#define ALIGN alignof(max_align_t)

static void
test_alignment(void **state)
{
	struct ehx_arena *a = ehx_arena_new(1024 * KiB);
	static const size_t sizes[] = { 1, 0, 3, 7, 8, 15, 16, 17, 31, 33, 100,
	    1000, 4095, 1, 2 };

	(void)state;
	assert_non_null(a);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			unsigned char *p = ehx_arena_alloc(a, sizes[i]);

			assert_non_null(p);
			assert_int_equal((uintptr_t)p % ALIGN, 0);
			/* The memory is ours to write. */
			memset(p, 0xa5, sizes[i]);
		}
	/* Consecutive small allocations do not overlap. */
	{
		char *x = ehx_arena_alloc(a, 5), *y = ehx_arena_alloc(a, 5);

		assert_true(y >= x + 5 || x >= y + 5);
		memcpy(x, "xxxx", 5);
		memcpy(y, "yyyy", 5);
		assert_string_equal(x, "xxxx");
	}
	ehx_arena_free(a);
	ehx_arena_free(NULL);
}

static void
test_limit(void **state)
{
	struct ehx_arena *a = ehx_arena_new(256 * KiB);
	size_t got = 0;
	void *p;

	(void)state;
	/* 1 KiB at a time until refused: never past the limit. */
	while ((p = ehx_arena_alloc(a, KiB)) != NULL) {
		memset(p, 1, KiB);
		got += KiB;
		assert_true(got <= 256 * KiB);
	}
	assert_true(got >= 192 * KiB);  /* most of it was usable */
	/* Once refused, refused again; a larger request too. */
	assert_null(ehx_arena_alloc(a, KiB));
	assert_null(ehx_arena_alloc(a, 64 * KiB));
	/* A request over the limit on an empty arena. */
	ehx_arena_reset(a);
	assert_null(ehx_arena_alloc(a, 256 * KiB + 1));
	assert_non_null(ehx_arena_alloc(a, 1));
	/* Absurd sizes are refused, not wrapped. */
	assert_null(ehx_arena_alloc(a, SIZE_MAX));
	assert_null(ehx_arena_alloc(a, SIZE_MAX - 8));
	assert_null(ehx_arena_alloc(a, SIZE_MAX / 2 + 1));
	ehx_arena_free(a);
}

static void
test_reset_reuses(void **state)
{
	struct ehx_arena *a = ehx_arena_new(8 * 1024 * KiB);
	void *first, *again;

	(void)state;
	first = ehx_arena_alloc(a, 100);
	assert_non_null(first);
	for (int i = 0; i < 200; i++)                   /* several chunks */
		assert_non_null(ehx_arena_alloc(a, 4 * KiB));
	ehx_arena_reset(a);
	again = ehx_arena_alloc(a, 100);
	assert_ptr_equal(again, first);
	/* Over and over: the total never creeps up to the limit. */
	for (int round = 0; round < 500; round++) {
		ehx_arena_reset(a);
		for (int i = 0; i < 40; i++)
			assert_non_null(ehx_arena_alloc(a, 4 * KiB));
	}
	ehx_arena_reset(a);
	assert_ptr_equal(ehx_arena_alloc(a, 1), first);
	/* Resetting an arena that never allocated is fine. */
	{
		struct ehx_arena *b = ehx_arena_new(KiB);

		ehx_arena_reset(b);
		ehx_arena_free(b);
	}
	ehx_arena_free(a);
}

static void
test_large(void **state)
{
	struct ehx_arena *a = ehx_arena_new(4 * 1024 * KiB);
	unsigned char *big, *small, *big2;

	(void)state;
	small = ehx_arena_alloc(a, 10);
	big = ehx_arena_alloc(a, 1024 * KiB);           /* > one chunk */
	assert_non_null(small);
	assert_non_null(big);
	assert_int_equal((uintptr_t)big % ALIGN, 0);
	memset(big, 0x5a, 1024 * KiB);
	memset(small, 0x11, 10);
	for (size_t i = 0; i < 1024 * KiB; i += 4093)
		assert_int_equal(big[i], 0x5a);
	assert_int_equal(big[1024 * KiB - 1], 0x5a);
	big2 = ehx_arena_alloc(a, 2 * 1024 * KiB);
	assert_non_null(big2);
	memset(big2, 0x77, 2 * 1024 * KiB);
	/* 1 + 2 MiB + the first chunk: another MiB does not fit in 4. */
	assert_null(ehx_arena_alloc(a, 1024 * KiB));
	assert_int_equal(big[0], 0x5a);
	ehx_arena_reset(a);
	/* After a reset the large chunks are gone: 3 MiB fits again. */
	big = ehx_arena_alloc(a, 3 * 1024 * KiB);
	assert_non_null(big);
	memset(big, 0, 3 * 1024 * KiB);
	ehx_arena_free(a);
}

static void
test_protobuf_unpack(void **state)
{
	struct ehx_arena *a = ehx_arena_new(1024 * KiB), *tiny;
	Ehx__StoredFlag sf = EHX__STORED_FLAG__INIT, *back;
	Ehx__FlagView fv = EHX__FLAG_VIEW__INIT;
	Ehx__Practitioner pr = EHX__PRACTITIONER__INIT;
	unsigned char id[16] = { 1, 2, 3 }, *buf;
	char note[281];
	size_t n;

	(void)state;
	memset(note, 'n', 280);
	note[280] = '\0';
	pr.name = "Jo Brown";
	fv.ref = "CASE-1";
	fv.category = EHX__CATEGORY__CATEGORY_HOUSING;
	fv.level = 4;
	fv.practitioner = &pr;
	fv.note = note;
	sf.agency = "housing";
	sf.agency_type = EHX__AGENCY_TYPE__AGENCY_TYPE_HOUSING;
	sf.flag = &fv;
	sf.source_message.data = id;
	sf.source_message.len = sizeof(id);
	n = ehx__stored_flag__get_packed_size(&sf);
	buf = malloc(n);
	ehx__stored_flag__pack(&sf, buf);

	for (int round = 0; round < 100; round++) {
		ehx_arena_reset(a);
		back = ehx__stored_flag__unpack(ehx_arena_allocator(a), n, buf);
		assert_non_null(back);
		assert_string_equal(back->agency, "housing");
		assert_non_null(back->flag);
		assert_string_equal(back->flag->ref, "CASE-1");
		assert_int_equal(back->flag->level, 4);
		assert_string_equal(back->flag->practitioner->name, "Jo Brown");
		assert_string_equal(back->flag->note, note);
		assert_memory_equal(back->source_message.data, id, sizeof(id));
		/* Freeing through the allocator is a no-op, and harmless. */
		if (round == 0)
			ehx__stored_flag__free_unpacked(back,
			    ehx_arena_allocator(a));
	}
	/* Garbage fails cleanly through the arena too. */
	assert_null(ehx__stored_flag__unpack(ehx_arena_allocator(a), 3,
	    (const uint8_t *)"\xff\xff\xff"));
	/* An arena too small to hold the message: unpack fails, no crash. */
	tiny = ehx_arena_new(64);
	assert_null(ehx__stored_flag__unpack(ehx_arena_allocator(tiny), n, buf));
	ehx_arena_free(tiny);
	/* One under the 64 KiB chunk size still serves what fits in it. */
	tiny = ehx_arena_new(1 * KiB);
	assert_non_null(ehx__stored_flag__unpack(ehx_arena_allocator(tiny), n,
	    buf));
	assert_null(ehx_arena_alloc(tiny, 2 * KiB));
	ehx_arena_free(tiny);
	free(buf);
	ehx_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_reset_reuses),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_protobuf_unpack),
	};

	return cmocka_run_group_tests_name("test_arena", tests, NULL, NULL);
}
