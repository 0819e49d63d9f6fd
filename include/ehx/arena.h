/*
 * arena.h — a bump allocator for one request's short-lived objects: the
 * stored values protobuf-c unpacks and the reply being built. Everything is
 * released at once by ehx_arena_reset(); memory is kept for the next request
 * so the hot path does not call malloc once warm.
 */
#ifndef EHX_ARENA_H
#define EHX_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct ehx_arena;

/* A new arena that refuses to grow beyond limit bytes. NULL on ENOMEM. */
struct ehx_arena *ehx_arena_new(size_t limit);
void ehx_arena_free(struct ehx_arena *a);

/* n bytes aligned for any type, or NULL past the limit. Valid until reset. */
void *ehx_arena_alloc(struct ehx_arena *a, size_t n);

/* How many allocations the arena has refused since it was made: a caller
 * whose unpack failed tells running out of room from bad bytes by it. */
size_t ehx_arena_failures(const struct ehx_arena *a);

/* Release everything allocated; keeps the first chunk. */
void ehx_arena_reset(struct ehx_arena *a);

/* An allocator for protobuf_c_message_unpack() backed by the arena. */
ProtobufCAllocator *ehx_arena_allocator(struct ehx_arena *a);

#endif
