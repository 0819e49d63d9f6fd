/*
 * arena.c — chunks of at least 64 KiB in a list; allocation bumps an offset
 * in the newest chunk. Reset frees all but the first chunk.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include "ehx/arena.h"

#define CHUNK_MIN (64 * 1024)

struct chunk {
	struct chunk *next;
	size_t size, used;
	alignas(max_align_t) unsigned char data[];
};

struct ehx_arena {
	struct chunk *head;
	size_t total, limit;
	size_t failures;                /* allocations refused */
	ProtobufCAllocator pa;
};

static void *
pa_alloc(void *data, size_t n)
{
	return ehx_arena_alloc(data, n);
}

static void
pa_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

struct ehx_arena *
ehx_arena_new(size_t limit)
{
	struct ehx_arena *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->limit = limit;
	a->pa.alloc = pa_alloc;
	a->pa.free = pa_free;
	a->pa.allocator_data = a;
	return a;
}

void
ehx_arena_free(struct ehx_arena *a)
{
	struct chunk *c, *next;

	if (a == NULL)
		return;
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void *
ehx_arena_alloc(struct ehx_arena *a, size_t n)
{
	const size_t align = alignof(max_align_t);
	struct chunk *c = a->head;
	size_t size;

	if (n == 0)
		n = 1;
	if (n > SIZE_MAX / 2)
		goto refused;
	n = (n + align - 1) & ~(align - 1);
	if (c == NULL || c->size - c->used < n) {
		size = n > CHUNK_MIN ? n : CHUNK_MIN;
		if (a->total + size > a->limit)
			size = n;	/* near the limit: only what is asked */
		if (a->total + size > a->limit)
			goto refused;
		if ((c = malloc(sizeof(*c) + size)) == NULL)
			goto refused;
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
		a->total += size;
	}
	c->used += n;
	return c->data + c->used - n;
refused:
	a->failures++;
	return NULL;
}

size_t
ehx_arena_failures(const struct ehx_arena *a)
{
	return a->failures;
}

void
ehx_arena_reset(struct ehx_arena *a)
{
	struct chunk *c;

	if (a->head == NULL)
		return;
	/* Keep the oldest chunk: the list's tail. */
	while (a->head->next != NULL) {
		c = a->head;
		a->head = c->next;
		a->total -= c->size;
		free(c);
	}
	a->head->used = 0;
}

ProtobufCAllocator *
ehx_arena_allocator(struct ehx_arena *a)
{
	return &a->pa;
}
