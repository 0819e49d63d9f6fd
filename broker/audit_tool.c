/*
 * audit_tool.c — `ehx-broker audit`: the operator's read-only view of the
 * audit log. It walks the whole log checking that each record names the
 * SHA-256 of the one before (so an edited or removed record shows), then
 * prints the last records as a table or as JSON lines. LMDB lets it read a
 * consistent snapshot while the broker keeps writing.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "broker.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/util.h"

static void
print_record(const Ehx__AuditRecord *r, bool json)
{
	char t[32], child[2 * EHX_PSEUDONYM_LEN + 1] = "-", msg[33] = "-";
	char who[EHX_MAX_NAME + 40] = "-";
	const Ehx__Person *p = r->person;

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
		printf("%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN));
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

int
audit_tool(struct store *s, unsigned long tail, bool json)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	unsigned char prev[32] = { 0 };
	unsigned long long n = 0, i = 0, bad = 0;
	int rc, pass;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, s->audit, &cur)) != 0) {
		fprintf(stderr, "ehx-broker: %s\n", mdb_strerror(rc));
		if (txn)
			mdb_txn_abort(txn);
		return EHX_ERR_STORAGE;
	}
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1 && !json)
			printf("%6s  %-16s  %-14s %-34s %-16s %-12s %-5s %-28s %s\n",
			    "SEQ", "TIME (UTC)", "AGENCY", "PERSON", "ACTION",
			    "CHILD", "DECISION", "BASIS/ERROR", "MESSAGE");
		i = 0;
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			Ehx__AuditRecord *r = ehx__audit_record__unpack(NULL,
			    v.mv_size, v.mv_data);

			i++;
			if (pass == 0) {
				if (r == NULL || r->seq != i ||
				    r->prev_hash.len != 32 ||
				    memcmp(r->prev_hash.data, prev, 32) != 0) {
					if (bad++ == 0)
						fprintf(stderr, "ehx-broker: audit "
						    "chain broken at record %llu\n", i);
				}
				ehx_sha256(v.mv_data, v.mv_size, prev);
			} else if (r != NULL && (tail == 0 || i + tail > n))
				print_record(r, json);
			if (r != NULL)
				ehx__audit_record__free_unpacked(r, NULL);
		}
		n = i;
	}
	/* The chain's end must be the head the broker recorded: otherwise
	 * the newest records were removed. */
	{
		unsigned char head_hash[32];
		uint64_t head_seq;

		rc = store_audit_head(s, txn, &head_seq, head_hash);
		if (rc == 0 && (head_seq != n ||
		    memcmp(head_hash, prev, 32) != 0)) {
			fprintf(stderr, "ehx-broker: audit chain ends at record "
			    "%llu, but the head names record %llu or another "
			    "hash: records were removed or changed\n", n,
			    (unsigned long long)head_seq);
			bad++;
		} else if (rc != 0 && !(rc == EHX_ERR_NOT_FOUND && n == 0)) {
			fprintf(stderr, "ehx-broker: the audit head is missing "
			    "or damaged\n");
			bad++;
		}
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	fflush(stdout);
	if (!json)
		fprintf(stderr, "%llu audit records; hash chain %s\n", n,
		    bad ? "BROKEN" : "verified");
	return bad ? EHX_ERR_STORAGE : 0;
}
