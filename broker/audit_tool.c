/*
 * audit_tool.c — `ehx-broker audit`: the operator's read-only view of the
 * audit log. It rebuilds the Merkle tree from the records themselves and
 * checks it against what the store holds: each record's leaf hash, the
 * size, the root, and every signed checkpoint (root and the broker's
 * signature) — so an edited, removed or added record shows. Then it prints
 * the last records as a table or as JSON lines. LMDB lets it read a
 * consistent snapshot while the broker keeps writing.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "audit_tool.h"
#include "ehx/checkpoint.h"
#include "ehx/err.h"
#include "ehx/frontier.h"
#include "ehx/names.h"
#include "ehx/util.h"
#include "ehx/validate.h"
#include "store.h"

static void
print_record(const Ehx__AuditRecord *r, bool json)
{
	char t[32], child[2 * EHX_PSEUDONYM_LEN + 1] = "-", msg[33] = "-";
	char who[EHX_MAX_NAME + 40] = "-";
	struct ehx_audit_person ap;
	/* Printed to a terminal: never a person as it came, unchecked. */
	const Ehx__Person *p = ehx_audit_person(r->person, &ap);

	if (r->child.len == EHX_PSEUDONYM_LEN)
		ehx_hex(child, r->child.data, r->child.len);
	if (r->message_id.len == EHX_MSGID_LEN)
		ehx_hex(msg, r->message_id.data, r->message_id.len);
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "seq", json_object_new_uint64(r->seq));
		json_object_object_add(o, "time", json_object_new_string(
		    ehx_fmt_iso(t, sizeof(t), r->time)));
		json_object_object_add(o, "agency",
		    json_object_new_string(r->agency));
		json_object_object_add(o, "user_id",
		    json_object_new_string(p ? p->user_id : ""));
		json_object_object_add(o, "person",
		    json_object_new_string(p ? p->name : ""));
		json_object_object_add(o, "role", json_object_new_string(
		    p ? ehx_role_name(p->role) : ""));
		json_object_object_add(o, "action",
		    json_object_new_string(r->action));
		json_object_object_add(o, "child", json_object_new_string(child));
		json_object_object_add(o, "decision", json_object_new_string(
		    r->decision == EHX__DECISION__DECISION_ALLOW ? "allow" :
		    "deny"));
		json_object_object_add(o, "error", json_object_new_string(
		    r->error ? ehx_errname(ehx_err_from_wire(r->error)) : ""));
		json_object_object_add(o, "basis",
		    json_object_new_string(r->basis));
		json_object_object_add(o, "message_id",
		    json_object_new_string(msg));
		json_object_object_add(o, "break_glass",
		    json_object_new_boolean(r->break_glass));
		json_object_object_add(o, "consent_id",
		    json_object_new_string(r->consent_id));
		if (r->n_notified > 0) {
			json_object *arr = json_object_new_array();

			for (size_t i = 0; i < r->n_notified; i++)
				json_object_array_add(arr,
				    json_object_new_string(
				    r->notified[i]->agency));
			json_object_object_add(o, "notified", arr);
		}
		printf("%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return;
	}
	if (p != NULL)
		snprintf(who, sizeof(who), "%s (%s)", p->name,
		    ehx_role_name(p->role));
	printf("%6llu  %s  %-14.14s %-34.34s %-16.16s %-12.12s %-5s %-28.28s %s\n",
	    (unsigned long long)r->seq, ehx_fmt_time(t, sizeof(t), r->time),
	    r->agency, who, r->action, child,
	    r->decision == EHX__DECISION__DECISION_ALLOW ? "allow" : "deny",
	    r->error ? ehx_errname(ehx_err_from_wire(r->error)) :
	    (r->basis[0] ? r->basis : "-"), msg);
}

/* Report one fault (the first ten are printed) and count it. */
#define FAULT(bad, ...) do { \
	if ((*(bad))++ < 10) \
		fprintf(stderr, __VA_ARGS__); \
} while (0)

/* Check the whole log against its tree and checkpoints; count faults. */
static unsigned long long
check_log(struct store *s, MDB_txn *txn, const struct ehx_cert *broker,
    unsigned long long *count)
{
	struct ehx_frontier f;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	unsigned char leaf[EHX_HASH_LEN], stored[EHX_HASH_LEN];
	unsigned char root[EHX_HASH_LEN];
	unsigned long long bad = 0, i = 0;
	uint64_t size = 0;
	int rc;

	ehx_frontier_init(&f);
	if ((rc = mdb_cursor_open(txn, s->audit, &cur)) != 0)
	{
		FAULT(&bad, "ehx-broker: cannot read the audit log: %s\n",
		    mdb_strerror(rc));
		return bad;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		Ehx__AuditRecord *r = ehx__audit_record__unpack(NULL,
		    v.mv_size, v.mv_data);
		Ehx__Checkpoint *cp;

		i++;
		if (r == NULL || r->seq != i || k.mv_size != 8 ||
		    get_be64(k.mv_data) != i)
			FAULT(&bad, "ehx-broker: audit record %llu is damaged or "
			    "out of place\n", i);
		if (r != NULL)
			ehx__audit_record__free_unpacked(r, NULL);
		ehx_merkle_leaf_hash(v.mv_data, v.mv_size, leaf);
		if (store_audit_leaf(s, txn, i, stored) != 0 ||
		    memcmp(leaf, stored, EHX_HASH_LEN) != 0)
			FAULT(&bad, "ehx-broker: audit record %llu is not the "
			    "record the tree committed to\n", i);
		ehx_frontier_add(&f, leaf);
		if ((rc = store_checkpoint_get(s, txn, i, NULL, &cp)) == 0) {
			ehx_frontier_root(&f, root);
			if (cp->root.len != EHX_HASH_LEN ||
			    memcmp(cp->root.data, root, EHX_HASH_LEN) != 0)
				FAULT(&bad, "ehx-broker: the checkpoint of %llu "
				    "records does not match the records\n", i);
			if (broker != NULL && ehx_checkpoint_verify(cp,
			    ehx_cert_pubkey(broker)) != 0)
				FAULT(&bad, "ehx-broker: the checkpoint of %llu "
				    "records is not signed by this broker\n", i);
			ehx__checkpoint__free_unpacked(cp, NULL);
		} else if (rc != EHX_ERR_NOT_FOUND)
			FAULT(&bad, "ehx-broker: the checkpoint of %llu records "
			    "cannot be read\n", i);
	}
	mdb_cursor_close(cur);
	/* The log must end where the broker says it does, with the root its
	 * stored tree gives: otherwise records were removed or added. */
	if (store_audit_size(s, txn, &size) != 0 || size != i)
		FAULT(&bad, "ehx-broker: the log holds %llu records, but the "
		    "store counted a different number: records were removed "
		    "or added\n", i);
	else {
		ehx_frontier_root(&f, root);
		if (store_audit_root(s, txn, size, stored) != 0 ||
		    memcmp(root, stored, EHX_HASH_LEN) != 0)
			FAULT(&bad, "ehx-broker: the stored tree over %llu "
			    "records does not match the records\n", i);
	}
	*count = i;
	return bad;
}

int
audit_tool(struct store *s, unsigned long tail, bool json,
    const struct ehx_cert *broker)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	unsigned long long n = 0, i = 0, bad;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) {
		fprintf(stderr, "ehx-broker: %s\n", mdb_strerror(rc));
		return EHX_ERR_STORAGE;
	}
	bad = check_log(s, txn, broker, &n);
	if ((rc = mdb_cursor_open(txn, s->audit, &cur)) != 0) {
		mdb_txn_abort(txn);
		return EHX_ERR_STORAGE;
	}
	if (!json)
		printf("%6s  %-16s  %-14s %-34s %-16s %-12s %-5s %-28s %s\n",
		    "SEQ", "TIME (UTC)", "AGENCY", "PERSON", "ACTION",
		    "CHILD", "DECISION", "BASIS/ERROR", "MESSAGE");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		Ehx__AuditRecord *r;

		if (++i + tail <= n && tail != 0)
			continue;
		if ((r = ehx__audit_record__unpack(NULL, v.mv_size,
		    v.mv_data)) == NULL)
			continue;
		print_record(r, json);
		ehx__audit_record__free_unpacked(r, NULL);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	fflush(stdout);
	if (!json)
		fprintf(stderr, "%llu audit records; Merkle tree and "
		    "checkpoints %s\n", n, bad ? "BROKEN" : "verified");
	return bad ? EHX_ERR_STORAGE : 0;
}
