/*
 * test_import — agent/cli/import.c, the rows of `ehx import`: CSV (header row,
 * any column order and case, RFC 4180 quoting with commas, doubled quotes
 * and line breaks inside fields, CRLF, CR, a byte order mark, blank and
 * all-empty rows) and JSON lines (typed values, nulls, blank lines); every
 * class of error with its row and line (unknown, repeated and missing
 * columns and keys, missing and wrong fields, a field for the other
 * action, bad UTF-8, NUL bytes, control characters, over-long fields, a
 * repeated (action, ref), CSV syntax, JSON syntax and types, the broker's
 * own rules); the bounds (file size, rows, errors kept); batches within
 * the agent's request size; the progress line and the summary.
 */
#include "testutil.h"

#include <json-c/json.h>

#include "../../agent/cli/import.h"
#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/util.h"

static struct import_rows rows;
static struct import_errors errs;

/* Parse s (its strlen) as fmt; the return code. rows and errs hold the rest. */
static int
parse(const char *s, enum import_format fmt)
{
	import_rows_free(&rows);
	memset(&rows, 0, sizeof(rows));
	return import_parse(s, strlen(s), fmt, &rows, &errs);
}

/* Row i's request. */
static struct import_msg msg;

static const Ehx__PublishFlag *
pub(size_t i)
{
	assert_true(i < rows.n);
	import_body(&rows, i, &msg);
	assert_int_equal(msg.body.payload_case, EHX__BODY__PAYLOAD_PUBLISH_FLAG);
	return msg.body.publish_flag;
}

static const Ehx__CloseFlag *
cls(size_t i)
{
	assert_true(i < rows.n);
	import_body(&rows, i, &msg);
	assert_int_equal(msg.body.payload_case, EHX__BODY__PAYLOAD_CLOSE_FLAG);
	return msg.body.close_flag;
}

/* errs holds an error on row (0: none) and line with why containing
 * text; returns its index. */
static size_t
has_error(size_t row, size_t line, const char *text)
{
	for (size_t i = 0; i < errs.n; i++)
		if (errs.e[i].row == row && errs.e[i].line == line &&
		    strstr(errs.e[i].why, text) != NULL)
			return i;
	fprintf(stderr, "no error row %zu line %zu \"%s\"; have:\n", row, line,
	    text);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  row %zu line %zu: %s\n", errs.e[i].row,
		    errs.e[i].line, errs.e[i].why);
	fail();
	return 0;
}

static const char header[] = "nhs_number,ref,category,level,practitioner\n";

/* ---- CSV ---------------------------------------------------------------- */

/* Children named as the agency knows them (issue 17): identity columns
 * on publish and close rows, and a school's roll. */
static void
test_identity_rows(void **state)
{
	const Ehx__PublishFlag *p;
	const Ehx__CloseFlag *c;
	const Ehx__RecordInvolvement *iv;
	char today[11];
	static const char roll[] =
	    "{\"upn\":\"B801200005001\",\"local_id\":\"ADM-7\","
	    "\"given_name\":\"Amelia\",\"family_name\":\"Hart\","
	    "\"date_of_birth\":\"2016-03-04\"}\n"
	    "{\"upn\":\"P207000016049\",\"from\":\"2025-09-03\"}\n";

	(void)state;
	assert_int_equal(parse("action,upn,local_id,given_name,family_name,"
	    "date_of_birth,sex,postcode,ref,category,level,practitioner\n"
	    "publish,b801 2000 05001,ADM-7,Amelia,Hart,2016-03-04,F,yo31 0ab,"
	    "att-1,school_attendance,2,Jo Brown\n"
	    "close,,ADM-7,,,,,,att-0,,,\n", IMPORT_CSV), 0);
	assert_int_equal(rows.n, 2);
	p = pub(0);
	assert_string_equal(p->nhs_number, "");
	assert_non_null(p->child);
	assert_string_equal(p->child->upn, "B801200005001");   /* normalised */
	assert_string_equal(p->child->postcode, "YO31 0AB");
	assert_int_equal(p->child->sex, EHX__SEX__SEX_FEMALE);
	assert_string_equal(p->child->local_id, "ADM-7");
	c = cls(1);
	assert_non_null(c->child);
	assert_string_equal(c->child->local_id, "ADM-7");
	/* an NHS number with an identity goes inside it */
	assert_int_equal(parse("nhs_number,local_id,ref,category,level,"
	    "practitioner\n943 476 5919,P-1,r1,housing,2,Kim\n", IMPORT_CSV),
	    0);
	p = pub(0);
	assert_string_equal(p->nhs_number, "");
	assert_string_equal(p->child->nhs_number, "9434765919");
	/* a roll: each row an enrolment from today */
	import_rows_free(&rows);
	memset(&rows, 0, sizeof(rows));
	rows.roll = true;
	assert_int_equal(import_parse(roll, sizeof(roll) - 1, IMPORT_JSONL,
	    &rows, &errs), 0);
	assert_int_equal(rows.n, 2);
	import_body(&rows, 0, &msg);
	assert_int_equal(msg.body.payload_case,
	    EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT);
	iv = msg.body.record_involvement;
	assert_int_equal(iv->kind,
	    EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_ENROLLED);
	assert_string_equal(iv->starts_on, ehx_fmt_day(today, sizeof(today),
	    ehx_now_ms()));
	assert_string_equal(iv->ends_on, "");
	assert_string_equal(iv->child->upn, "B801200005001");
	import_body(&rows, 1, &msg);
	assert_string_equal(msg.body.record_involvement->starts_on,
	    "2025-09-03");
	/* the roll's own mistakes, each named */
	import_rows_free(&rows);
	memset(&rows, 0, sizeof(rows));
	rows.roll = true;
	{
		static const char bad[] =
		    "upn,local_id,family_name,date_of_birth,sex,postcode,kind,"
		    "ref\n"
		    "A801200005001,,,,,,,\n"
		    ",X1,,,,YO1 7CH,,\n"
		    ",X2,,,other,,,\n"
		    ",X3,,,,,lodger,\n"
		    ",X4,,,,,,r-1\n"
		    ",,Hart,,,,,\n"
		    ",X5,,2016-02-30,,,,\n"
		    ",X6,,,,,,\n"
		    ",X6,,,,,,\n";

		assert_int_equal(import_parse(bad, sizeof(bad) - 1, IMPORT_CSV,
		    &rows, &errs), EHX_ERR_INVALID_FIELD);
		has_error(1, 2, "upn is not a unique pupil number");
		has_error(2, 3, "postcode is not a UK postcode");
		has_error(3, 4, "sex must be female, male or indeterminate");
		has_error(4, 5, "kind must be enrolled, registered, caseload or "
		    "tenancy");
		has_error(5, 6, "ref is for publish rows, not involvement rows");
		has_error(6, 7, "the child is not named");
		has_error(7, 8, "date_of_birth must be a date");
		has_error(9, 10, "the same child is on row 8 (line 9) already");
	}
	/* without --roll an involvement needs its kind and start */
	assert_int_equal(parse("action,local_id\ninvolvement,X1\n",
	    IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(1, 2, "kind is required");
	has_error(1, 2, "from is required");
}

static void
test_csv_happy(void **state)
{
	(void)state;
	assert_int_equal(parse(
	    "Action , NHS_Number,ref,Category,LEVEL,practitioner,job,contact,"
	    "lead,note,withhold,reason\n"
	    "publish,943 476 5919,inc-7,Domestic_Abuse,3,PC Sam Jones,"
	    "Operation Encompass officer,101 ext 4455,yes,,no,\n"
	    ",9434765919,hv-1,mental_health,2,Alex Patel,school nurse,"
	    "alex@nhs.example,TRUE,Weekly sessions,1,\n"
	    "close,943-476-5919,old-3,,,,,,,,,no further incidents\n",
	    IMPORT_CSV), 0);
	assert_int_equal(errs.total, 0);
	assert_int_equal(rows.n, 3);
	assert_int_equal(rows.seen, 3);
	assert_string_equal(pub(0)->nhs_number, "9434765919");
	assert_string_equal(pub(0)->ref, "inc-7");
	assert_int_equal(pub(0)->category, EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE);
	assert_int_equal(pub(0)->level, 3);
	assert_string_equal(pub(0)->practitioner->name, "PC Sam Jones");
	assert_string_equal(pub(0)->practitioner->role,
	    "Operation Encompass officer");
	assert_string_equal(pub(0)->practitioner->contact, "101 ext 4455");
	assert_true(pub(0)->lead);
	assert_false(pub(0)->withhold);
	assert_string_equal(pub(0)->note, "");
	/* An empty action is a publish. */
	assert_string_equal(pub(1)->ref, "hv-1");
	assert_true(pub(1)->lead);
	assert_true(pub(1)->withhold);
	assert_string_equal(pub(1)->note, "Weekly sessions");
	assert_string_equal(cls(2)->nhs_number, "9434765919");
	assert_string_equal(cls(2)->ref, "old-3");
	assert_string_equal(cls(2)->reason, "no further incidents");
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(rows.row[i].row, i + 1);
		assert_int_equal(rows.row[i].line, i + 2);
	}
	import_rows_free(&rows);
	import_rows_free(&rows);         /* twice is fine */
	assert_null(rows.row);
}

/* The locality column: kept as given on publish rows, checked by the
 * broker's rule, refused on close rows. */
static void
test_csv_locality(void **state)
{
	(void)state;
	assert_int_equal(parse(
	    "nhs_number,ref,category,level,practitioner,locality,action\n"
	    "9434765919,a-1,send,2,Jo,east,publish\n"
	    "9434765919,a-2,send,2,Jo,,publish\n",
	    IMPORT_CSV), 0);
	assert_int_equal(rows.n, 2);
	assert_string_equal(pub(0)->locality, "east");
	assert_string_equal(pub(1)->locality, "");
	import_rows_free(&rows);
	assert_int_equal(parse(
	    "nhs_number,ref,category,level,practitioner,locality,action\n"
	    "9434765919,a-1,send,2,Jo,East Side,publish\n"
	    "9434765919,a-2,,,,west,close\n",
	    IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(1, 2, "locality must be 1..32 of a-z");
	has_error(2, 3, "locality is for publish rows, not close rows");
	assert_int_equal(rows.n, 0);
}

/* Quoting: commas, doubled quotes, line breaks in fields, spaces kept
 * inside quotes and trimmed outside. */
static void
test_csv_quoting(void **state)
{
	(void)state;
	assert_int_equal(parse(
	    "nhs_number,ref,category,level,practitioner,contact,note\n"
	    "9434765919,a-1,send,1,\"Patel, Alex\",\"01904 555\",\"said \"\"hi\"\""
	    ", then left\"\n"
	    "9434765919,a-2,send,1,Jo,,\"first line\n"
	    "second line\r\n\tthird\"\n"
	    "  9434765919  ,  a-3 ,send,1,  Jo Brown  ,,\n"
	    "9434765919,a-4,send,1,\"Jo\",,\"\"\n",
	    IMPORT_CSV), 0);
	assert_int_equal(rows.n, 4);
	assert_string_equal(pub(0)->practitioner->name, "Patel, Alex");
	assert_string_equal(pub(0)->note, "said \"hi\", then left");
	/* Line breaks and tabs in a note fold into one space each run. */
	assert_string_equal(pub(1)->note, "first line second line third");
	assert_int_equal(rows.row[1].line, 3);
	/* The row after a field of three lines starts on line 6. */
	assert_int_equal(rows.row[2].line, 6);
	assert_int_equal(rows.row[2].row, 3);
	assert_string_equal(pub(2)->ref, "a-3");
	assert_string_equal(pub(2)->practitioner->name, "Jo Brown");
	assert_string_equal(pub(3)->note, "");
	assert_int_equal(rows.row[3].line, 7);
}

/* A byte order mark, CRLF, old Macintosh CR, no newline at the end, blank
 * lines and spreadsheet rows of empty cells. */
static void
test_csv_line_ends(void **state)
{
	(void)state;
	assert_int_equal(parse("\xef\xbb\xbfnhs_number,ref,category,level,"
	    "practitioner\r\n\r\n9434765919,b-1,housing,2,Jo\r\n,,,,\r\n"
	    "   \r\n9434765919,b-2,housing,2,Jo", IMPORT_CSV), 0);
	assert_int_equal(rows.n, 2);
	assert_int_equal(rows.seen, 2);
	assert_int_equal(rows.row[0].line, 3);
	assert_int_equal(rows.row[1].line, 6);
	assert_int_equal(rows.row[1].row, 2);
	assert_string_equal(pub(1)->ref, "b-2");
	assert_int_equal(parse("nhs_number,ref,reason,action\r9434765919,c-1,"
	    "x,close\r9434765919,c-2,y,close\r", IMPORT_CSV), 0);
	assert_int_equal(rows.n, 2);
	assert_int_equal(rows.row[1].line, 3);
	/* A header only: no rows, and that is fine. */
	assert_int_equal(parse(header, IMPORT_CSV), 0);
	assert_int_equal(rows.n, 0);
}

static void
test_csv_header_errors(void **state)
{
	(void)state;
	assert_int_equal(parse("nhs_number,ref,colour,REF,,category,level,"
	    "practitioner\n9434765919,d-1,red,d-1,,send,2,Jo\n", IMPORT_CSV),
	    EHX_ERR_INVALID_FIELD);
	has_error(0, 1, "unknown column \"colour\"");
	has_error(0, 1, "column \"ref\" appears twice");
	has_error(0, 1, "column 5 of the header has no name");
	assert_int_equal(errs.total, 3);
	/* The rows are still checked, without the columns refused. */
	assert_int_equal(rows.n, 1);
	assert_int_equal(parse("ref,category\nx,send\n", IMPORT_CSV),
	    EHX_ERR_INVALID_FIELD);
	has_error(0, 1, "the header needs a column naming the child");
	assert_int_equal(errs.total, 1);       /* and no row errors then */
	assert_int_equal(parse("nhs_number;ref;category\n", IMPORT_CSV),
	    EHX_ERR_INVALID_FIELD);
	has_error(0, 1, "with commas between the names");
	assert_int_equal(parse("", IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(0, 0, "the file is empty");
	assert_int_equal(parse("\xff\xfen\0h\0", IMPORT_CSV),
	    EHX_ERR_INVALID_FIELD);
	has_error(0, 1, "UTF-16");
}

static void
test_csv_row_errors(void **state)
{
	char buf[4096];

	(void)state;
	snprintf(buf, sizeof(buf), "%s"
	    "9434765919,e-1,send,2\n"                          /* 1, line 2 */
	    "9434765918,e-2,send,2,Jo\n"                        /* 2, line 3 */
	    "9434765919,,sport,5,Jo\n"                          /* 3, line 4 */
	    "9434765919,e-4,send,2,\"Jo\nBrown\"\n"             /* 4, line 5 */
	    "9434765919,e-5,send,2,J\xc3\x28o\n"                /* 5, line 7 */
	    "9434765919,e-6,send,2,,\n"                         /* 6, line 8 */
	    ",,,,\n"                                            /* skipped */
	    "9434765919,e 7,send,2,Jo\n"                        /* 7, line 10 */
	    "9434765919,e-8,send,two,Jo\n",                     /* 8, line 11 */
	    header);
	assert_int_equal(parse(buf, IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(1, 2, "the row has 4 fields; the header has 5");
	has_error(2, 3, "nhs_number is not a valid NHS number");
	has_error(3, 4, "ref is required");
	has_error(3, 4, "category \"sport\" is not a known category");
	has_error(3, 4, "level must be 1, 2, 3 or 4, not \"5\"");
	has_error(4, 5, "practitioner contains a control character");
	has_error(5, 7, "practitioner is not valid UTF-8");
	has_error(6, 8, "the row has 6 fields");
	has_error(7, 10, "ref must be 1..64 of A-Z");   /* the broker's rule */
	has_error(8, 11, "level must be 1, 2, 3 or 4, not \"two\"");
	assert_int_equal(errs.total, errs.n);
	assert_int_equal(rows.n, 0);
	assert_int_equal(rows.seen, 8);
}

static void
test_csv_action_errors(void **state)
{
	(void)state;
	assert_int_equal(parse("action,nhs_number,ref,category,level,"
	    "practitioner,lead,withhold,reason\n"
	    "open,9434765919,f-1,send,1,Jo,,,\n"
	    "close,9434765919,f-2,send,,,,,gone\n"
	    "close,9434765919,f-3,,,,no,false,gone\n"
	    "publish,9434765919,f-4,send,1,Jo,maybe,,\n"
	    "publish,9434765919,f-5,send,1,Jo,,,why\n"
	    "close,9434765919,f-6,,,,yes,,\n",
	    IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(1, 2, "action must be publish, close or involvement, not \"open\"");
	has_error(2, 3, "category is for publish rows, not close rows");
	/* "no" under lead on a close row does no harm. */
	has_error(4, 5, "lead must be true, false, yes, no, 1 or 0, not "
	    "\"maybe\"");
	has_error(5, 6, "reason is for close rows, not publish rows");
	has_error(6, 7, "lead is for publish rows");
	assert_int_equal(errs.total, 5);
	assert_int_equal(rows.n, 1);
	assert_string_equal(cls(0)->ref, "f-3");
}

/* Over-long fields (counted after trimming and folding), NUL bytes, and
 * a field too long to copy at all. */
static void
test_csv_lengths(void **state)
{
	char note[400], name[130], *big, *buf;
	size_t n;

	(void)state;
	memset(note, 'n', sizeof(note));
	note[280] = '\0';
	memset(name, 'a', sizeof(name));
	name[128] = '\0';
	assert_non_null(buf = malloc(32768));
	/* Exactly at the limits: fine. */
	snprintf(buf, 32768, "nhs_number,ref,category,level,practitioner,note\n"
	    "9434765919,g-1,send,1,%s,\"  %s \n\"\n", name, note);
	assert_int_equal(parse(buf, IMPORT_CSV), 0);
	assert_int_equal(strlen(pub(0)->note), 280);
	/* One byte over. */
	note[280] = 'n';
	note[281] = '\0';
	name[128] = 'a';
	name[129] = '\0';
	snprintf(buf, 32768, "nhs_number,ref,category,level,practitioner,note\n"
	    "9434765919,g-1,send,1,%s,%s\n", name, note);
	assert_int_equal(parse(buf, IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(1, 2, "practitioner is 129 bytes; at most 128");
	has_error(1, 2, "note is 281 bytes; at most 280");
	/* A field of 10,000 bytes is measured, not kept. */
	assert_non_null(big = malloc(10001));
	memset(big, 'x', 10000);
	big[10000] = '\0';
	snprintf(buf, 32768, "nhs_number,ref,category,level,practitioner,note\n"
	    "9434765919,g-2,send,1,Jo,%s\n", big);
	assert_int_equal(parse(buf, IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(1, 2, "note is 10000 bytes; at most 280");
	free(big);
	/* A NUL byte inside a field (the length says where the data ends). */
	n = (size_t)snprintf(buf, 32768, "%s9434765919,g-3,send,1,J", header);
	buf[n++] = '\0';
	memcpy(buf + n, "o\n", 3);
	import_rows_free(&rows);
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(import_parse(buf, n + 2, IMPORT_CSV, &rows, &errs),
	    EHX_ERR_INVALID_FIELD);
	has_error(1, 2, "practitioner contains a NUL byte");
	free(buf);
}

static void
test_csv_duplicates(void **state)
{
	(void)state;
	assert_int_equal(parse("action,nhs_number,ref,category,level,"
	    "practitioner\n"
	    "publish,9434765919,h-1,send,1,Jo\n"
	    "close,9434765919,h-1,,,\n"          /* another action: fine */
	    "publish,9434765919,h-2,send,1,Jo\n"
	    "publish,9434765919,h-1,send,2,Jo\n"
	    "close,9434765919,h-1,,,\n"
	    "publish,9434765919,H-1,send,1,Jo\n",  /* refs are exact */
	    IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(4, 5, "ref \"h-1\" is published already by row 1 (line 2)");
	has_error(5, 6, "ref \"h-1\" is closed already by row 2 (line 3)");
	assert_int_equal(errs.total, 2);
	assert_int_equal(rows.n, 4);
}

static void
test_csv_syntax(void **state)
{
	char buf[512];

	(void)state;
	snprintf(buf, sizeof(buf), "%s9434765919,i-1,send,1,Jo\n"
	    "9434765919,i-2,send,1,Jo \"the\" nurse\n"
	    "9434765919,i-3,send,1,Jo\n", header);
	assert_int_equal(parse(buf, IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(2, 3, "not CSV: a quote inside a field");
	assert_int_equal(errs.total, 1);       /* the parse stops there */
	snprintf(buf, sizeof(buf), "%s9434765919,i-1,send,1,Jo\n"
	    "9434765919,i-2,send,1,\"Jo\" x\n", header);
	assert_int_equal(parse(buf, IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(2, 3, "text after a closing quote");
	snprintf(buf, sizeof(buf), "%s9434765919,i-1,send,1,Jo\n"
	    "9434765919,i-2,send,1,\"Jo\nand more\n", header);
	assert_int_equal(parse(buf, IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	has_error(0, 3, "not closed before the end of the file");
}

/* ---- JSON lines ------------------------------------------------------- */

static void
test_jsonl_happy(void **state)
{
	(void)state;
	assert_int_equal(parse("\xef\xbb\xbf"
	    "{\"nhs_number\": \"943 476 5919\", \"ref\": \"j-1\", \"category\": "
	    "\"send\", \"level\": 4, \"practitioner\": \"Jo \\\"JB\\\" Brown\", "
	    "\"lead\": true, \"withhold\": false, \"job\": null, \"note\": "
	    "\"caf\\u00e9, then\\nmore\"}\r\n"
	    "\r\n"
	    "   \n"
	    "{\"action\": \"close\", \"nhs_number\": \"9434765919\", \"ref\": "
	    "\"j-1\", \"reason\": \"done\", \"Lead\": null}\n"
	    "  {\"NHS_NUMBER\": \"9434765919\", \"ref\": \"j-2\", \"category\": "
	    "\"HOUSING\", \"level\": 1, \"practitioner\": \"Al\", \"note\": \"\"}",
	    IMPORT_JSONL), 0);
	assert_int_equal(rows.n, 3);
	assert_int_equal(pub(0)->level, 4);
	assert_string_equal(pub(0)->practitioner->name, "Jo \"JB\" Brown");
	assert_string_equal(pub(0)->practitioner->role, "");
	assert_string_equal(pub(0)->note, "café, then more");
	assert_true(pub(0)->lead);
	assert_int_equal(rows.row[0].line, 1);
	assert_string_equal(cls(1)->reason, "done");
	assert_int_equal(rows.row[1].line, 4);
	assert_int_equal(rows.row[1].row, 2);
	assert_int_equal(pub(2)->category, EHX__CATEGORY__CATEGORY_HOUSING);
	assert_int_equal(rows.row[2].line, 5);
	/* An empty file of JSON lines is no rows. */
	assert_int_equal(parse("", IMPORT_JSONL), 0);
	assert_int_equal(rows.n, 0);
}

static void
test_jsonl_errors(void **state)
{
	(void)state;
	assert_int_equal(parse(
	    "{\"nhs_number\": \"9434765919\", \"ref\": \"k-1\", \"category\": "
	    "\"send\", \"level\": \"2\", \"practitioner\": \"Jo\", \"lead\": "
	    "\"yes\", \"colour\": 1}\n"                                   /* 1 */
	    "[1, 2]\n"                                                    /* 2 */
	    "{\"ref\": \"a\", \"ref\": \"b\"}\n"                          /* 3 */
	    "{\"ref\": \"a\", \"REF\": \"b\"}\n"                          /* 4 */
	    "{bad json\n"                                                 /* 5 */
	    "{\"nhs_number\": \"9434765919\", \"ref\": \"k-6\"} trailing\n" /* 6 */
	    "{\"nhs_number\": 9434765919, \"ref\": \"k-7\", \"action\": "
	    "\"close\"}\n"                                                /* 7 */
	    "{\"nhs_number\": \"9434765919\", \"ref\": \"k-8\", \"category\": "
	    "\"send\", \"level\": 2.0, \"practitioner\": \"Jo\"}\n"       /* 8 */
	    "{\"nhs_number\": \"9434765919\", \"ref\": \"k-9\", \"action\": "
	    "\"close\", \"reason\": \"a\\u0000b\"}\n"                     /* 9 */
	    "{\"nhs_number\": \"9434765919\", \"ref\": \"k-10\", \"action\": "
	    "\"close\", \"reason\": \"\xff\"}\n"                          /* 10 */
	    "{\"nhs_number\": \"9434765919\", \"ref\": \"k-11\", \"action\": "
	    "\"close\", \"reason\": \"bell\\u0007\"}\n",                  /* 11 */
	    IMPORT_JSONL), EHX_ERR_INVALID_FIELD);
	has_error(1, 1, "level must be a number, 1, 2, 3 or 4");
	has_error(1, 1, "lead must be true or false");
	has_error(1, 1, "unknown key \"colour\"");
	has_error(2, 2, "the line is JSON but not an object");
	has_error(3, 3, "a key appears twice");
	has_error(4, 4, "key \"ref\" appears twice");
	has_error(5, 5, "not JSON");
	has_error(6, 6, "not JSON");
	has_error(7, 7, "nhs_number must be a string");
	has_error(8, 8, "level must be a number, 1, 2, 3 or 4");
	has_error(9, 9, "reason contains a NUL byte");
	has_error(10, 10, "not JSON");             /* json-c checks UTF-8 */
	has_error(11, 11, "reason contains a control character");
	assert_int_equal(rows.seen, 11);
	assert_int_equal(rows.n, 0);
}

/* ---- bounds ---------------------------------------------------------- */

static void
test_bounds(void **state)
{
	char *buf;
	size_t n = 0, cap = 1 << 20;

	(void)state;
	/* Over the file bound: refused before a byte is read. */
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(import_parse("", IMPORT_MAX_FILE + 1, IMPORT_CSV, &rows,
	    &errs), EHX_ERR_TOO_LARGE);
	has_error(0, 0, "at most 268435456");
	import_rows_free(&rows);
	/* Over the rows bound (lowered here: the real one is 1,000,000). */
	assert_non_null(buf = malloc(cap));
	n += (size_t)snprintf(buf, cap, "%s", header);
	for (int i = 1; i <= 12; i++)
		n += (size_t)snprintf(buf + n, cap - n,
		    "9434765919,l-%d,send,1,Jo\n", i);
	memset(&rows, 0, sizeof(rows));
	rows.max_rows = 10;
	assert_int_equal(import_parse(buf, n, IMPORT_CSV, &rows, &errs),
	    EHX_ERR_TOO_LARGE);
	has_error(0, 12, "more than 10 rows: split the file");
	assert_int_equal(rows.n, 10);
	import_rows_free(&rows);
	/* The same in JSON lines, and exactly at the bound is fine. */
	n = 0;
	for (int i = 1; i <= 10; i++)
		n += (size_t)snprintf(buf + n, cap - n, "{\"nhs_number\": "
		    "\"9434765919\", \"ref\": \"m-%d\", \"action\": \"close\"}\n",
		    i);
	memset(&rows, 0, sizeof(rows));
	rows.max_rows = 10;
	assert_int_equal(import_parse(buf, n, IMPORT_JSONL, &rows, &errs), 0);
	assert_int_equal(rows.n, 10);
	import_rows_free(&rows);
	n += (size_t)snprintf(buf + n, cap - n, "{}\n");
	memset(&rows, 0, sizeof(rows));
	rows.max_rows = 10;
	assert_int_equal(import_parse(buf, n, IMPORT_JSONL, &rows, &errs),
	    EHX_ERR_TOO_LARGE);
	has_error(0, 11, "more than 10 rows");
	import_rows_free(&rows);
	/* 250 bad rows: 100 errors kept, all 250 counted. */
	n = (size_t)snprintf(buf, cap, "%s", header);
	for (int i = 1; i <= 250; i++)
		n += (size_t)snprintf(buf + n, cap - n,
		    "9434765918,n-%d,send,1,Jo\n", i);
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(import_parse(buf, n, IMPORT_CSV, &rows, &errs),
	    EHX_ERR_INVALID_FIELD);
	assert_int_equal(errs.n, IMPORT_MAX_ERRORS);
	assert_int_equal(errs.total, 250);
	assert_int_equal(errs.e[99].row, 100);
	assert_int_equal(errs.e[99].line, 101);
	free(buf);
}

/* Many rows: numbering, the duplicate check across table growth. */
static void
test_many_rows(void **state)
{
	size_t cap = 8 << 20, n;
	char *buf;

	(void)state;
	assert_non_null(buf = malloc(cap));
	n = (size_t)snprintf(buf, cap, "%s", header);
	for (int i = 0; i < 50000; i++)
		n += (size_t)snprintf(buf + n, cap - n,
		    "9434765919,r-%d,send,%d,Jo\n", i, 1 + i % 4);
	n += (size_t)snprintf(buf + n, cap - n, "9434765919,r-1234,send,1,Jo\n");
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(import_parse(buf, n, IMPORT_CSV, &rows, &errs),
	    EHX_ERR_INVALID_FIELD);
	assert_int_equal(errs.total, 1);
	has_error(50001, 50002, "is published already by row 1235 (line 1236)");
	assert_int_equal(rows.n, 50000);
	assert_int_equal(pub(49999)->level, 4);
	assert_string_equal(pub(49999)->ref, "r-49999");
	free(buf);
}

/* Every batch stays within the agent's request, at most 256 rows. */
static void
test_batches(void **state)
{
	char note[281], *buf;
	size_t cap = 4 << 20, n, start, batches = 0;

	(void)state;
	memset(note, 'x', 280);
	note[280] = '\0';
	assert_non_null(buf = malloc(cap));
	n = (size_t)snprintf(buf, cap, "nhs_number,ref,category,level,"
	    "practitioner,note\n");
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(buf + n, cap - n,
		    "9434765919,s-%d,send,1,Jo,%s\n", i, i % 2 ? note : "");
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(import_parse(buf, n, IMPORT_CSV, &rows, &errs), 0);
	for (start = 0; start < rows.n; batches++) {
		Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
		struct import_msg m[IMPORT_BATCH];
		Ehx__Body *b[IMPORT_BATCH];
		size_t end = import_batch_end(&rows, start, IMPORT_BATCH_BYTES);

		assert_true(end > start && end - start <= IMPORT_BATCH);
		for (size_t i = start; i < end; i++) {
			import_body(&rows, i, &m[i - start]);
			b[i - start] = &m[i - start].body;
		}
		lr.batch = b;
		lr.n_batch = end - start;
		lr.as_role = EHX__ROLE__ROLE_ADMIN;
		assert_true(ehx__local_request__get_packed_size(&lr) <=
		    IMPORT_BATCH_BYTES);
		/* As full as it may be: one more row would not fit. */
		if (end < rows.n && end - start < IMPORT_BATCH) {
			struct import_msg extra;
			Ehx__Body *b2[IMPORT_BATCH + 1];

			memcpy(b2, b, (end - start) * sizeof(*b));
			import_body(&rows, end, &extra);
			b2[end - start] = &extra.body;
			lr.batch = b2;
			lr.n_batch = end - start + 1;
			assert_true(ehx__local_request__get_packed_size(&lr) >
			    IMPORT_BATCH_BYTES);
		}
		start = end;
	}
	assert_true(batches >= 8);
	free(buf);
	/* Short rows: 256 a batch. */
	assert_int_equal(parse("nhs_number,ref,action\n9434765919,a,close\n"
	    "9434765919,b,close\n", IMPORT_CSV), 0);
	assert_int_equal(import_batch_end(&rows, 0, IMPORT_BATCH_BYTES), 2);
	assert_int_equal(import_batch_end(&rows, 1, IMPORT_BATCH_BYTES), 2);
	assert_int_equal(import_batch_end(&rows, 0, 1), 1);  /* always one */
}

static void
test_format_of(void **state)
{
	(void)state;
	assert_int_equal(import_format_of("x.csv"), IMPORT_CSV);
	assert_int_equal(import_format_of("/a.b/X.CSV"), IMPORT_CSV);
	assert_int_equal(import_format_of("x.jsonl"), IMPORT_JSONL);
	assert_int_equal(import_format_of("x.NDJSON"), IMPORT_JSONL);
	assert_int_equal(import_format_of("x.json"), IMPORT_UNKNOWN);
	assert_int_equal(import_format_of("csv"), IMPORT_UNKNOWN);
	assert_int_equal(import_format_of("dir.csv/file"), IMPORT_UNKNOWN);
	assert_int_equal(parse("x", IMPORT_UNKNOWN), EHX_ERR_INVALID_FIELD);
	has_error(0, 0, "unknown format");
}

/* ---- what is printed ------------------------------------------------ */

static char out[65536];

static FILE *
out_open(void)
{
	FILE *f;

	memset(out, 0, sizeof(out));
	assert_non_null(f = fmemopen(out, sizeof(out) - 1, "w"));
	return f;
}

static void
test_print_errors(void **state)
{
	json_object *o, *e;
	FILE *f;

	(void)state;
	assert_int_equal(parse("nhs_number,ref,action,x\n9434765918,a,close,1\n",
	    IMPORT_CSV), EHX_ERR_INVALID_FIELD);
	f = out_open();
	import_print_errors(f, "in\x1b[2J.csv", &errs, false);
	fclose(f);
	assert_non_null(strstr(out, "in?[2J.csv: line 1: unknown column \"x\""));
	assert_non_null(strstr(out, "in?[2J.csv: row 1 (line 2): nhs_number is "
	    "not a valid NHS number"));
	assert_null(strstr(out, "more error"));
	f = out_open();
	import_print_errors(f, "in.csv", &errs, true);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_false(json_object_get_boolean(json_object_object_get(o,
	    "valid")));
	e = json_object_object_get(o, "errors");
	assert_int_equal(json_object_array_length(e), 2);
	assert_null(json_object_object_get(json_object_array_get_idx(e, 0),
	    "row"));
	assert_int_equal(json_object_get_int(json_object_object_get(
	    json_object_array_get_idx(e, 1), "row")), 1);
	json_object_put(o);
	/* More than are kept. */
	errs.total = errs.n + 7;
	f = out_open();
	import_print_errors(f, "in.csv", &errs, false);
	fclose(f);
	assert_non_null(strstr(out, "in.csv: … and 7 more errors\n"));
}

static void
test_progress(void **state)
{
	char line[160];

	(void)state;
	import_progress_line(line, sizeof(line), 0, 1000, 0);
	assert_string_equal(line, "[------------------------] 0/1000 rows  0/s  "
	    "--:-- left");
	import_progress_line(line, sizeof(line), 250, 1000, 5000);
	assert_string_equal(line, "[######------------------] 250/1000 rows  "
	    "50/s  0:15 left");
	import_progress_line(line, sizeof(line), 50, 500000, 1000);
	assert_non_null(strstr(line, " 50/s  2:46:39 left"));
	import_progress_line(line, sizeof(line), 1000, 1000, 4000);
	assert_string_equal(line, "[########################] 1000/1000 rows  "
	    "250/s  0:00 left");
}

static void
test_summary(void **state)
{
	struct import_refusal rf[2];
	struct import_result res;
	json_object *o, *a;
	FILE *f;

	(void)state;
	memset(&res, 0, sizeof(res));
	memset(rf, 0, sizeof(rf));
	res.rows = 5;
	res.delivered = 3;
	res.unchanged = 1;
	res.refused = 2;
	res.elapsed_ms = 12345;
	res.first = 10;
	res.last = 14;
	res.waited = true;
	rf[0].row = 2;
	rf[0].line = 3;
	rf[0].number = 11;
	rf[0].code = EHX_ERR_NOT_FOUND;
	snprintf(rf[0].message, sizeof(rf[0].message), "no such flag");
	snprintf(rf[0].what, sizeof(rf[0].what), "close_flag x");
	rf[1] = rf[0];
	rf[1].row = 5;
	rf[1].code = EHX_ERR_NOT_PERMITTED;
	snprintf(rf[1].message, sizeof(rf[1].message), "bad\x1b[31m");
	res.refusals = rf;
	res.n_refusals = 2;
	f = out_open();
	import_print_summary(f, "f.csv", &res, false);
	fclose(f);
	assert_string_equal(out, "f.csv: 5 rows: 3 delivered (1 unchanged), 2 "
	    "refused, in 12.3 s\nrow 2: no such flag (not_found)\n"
	    "row 5: bad?[31m (not_permitted)\n");
	res.refused = 4;
	res.pending = 0;
	res.timed_out = true;
	res.pending = 3;
	f = out_open();
	import_print_summary(f, "f.csv", &res, false);
	fclose(f);
	assert_non_null(strstr(out, "… and 2 more refused"));
	assert_non_null(strstr(out, "f.csv: 3 rows still queued when the wait "
	    "ended; the agent will deliver them"));
	f = out_open();
	import_print_summary(f, "f.csv", &res, true);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "delivered")), 3);
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "refused")), 4);
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "more_refusals")), 2);
	assert_true(json_object_get_boolean(json_object_object_get(o,
	    "timed_out")));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "first_outbox")), 10);
	a = json_object_object_get(o, "refusals");
	assert_int_equal(json_object_array_length(a), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(
	    json_object_array_get_idx(a, 0), "error")), "not_found");
	assert_int_equal(json_object_get_int(json_object_object_get(
	    json_object_array_get_idx(a, 1), "row")), 5);
	json_object_put(o);
	/* Not waited for: where they were queued. */
	memset(&res, 0, sizeof(res));
	res.rows = 300;
	res.first = 7;
	res.last = 306;
	f = out_open();
	import_print_summary(f, "f.csv", &res, false);
	fclose(f);
	assert_string_equal(out, "f.csv: 300 rows queued (outbox 7..306); the "
	    "agent delivers them.\n");
}

static int
teardown(void **state)
{
	(void)state;
	import_rows_free(&rows);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_csv_happy, teardown),
		cmocka_unit_test_teardown(test_identity_rows, teardown),
		cmocka_unit_test_teardown(test_csv_locality, teardown),
		cmocka_unit_test_teardown(test_csv_quoting, teardown),
		cmocka_unit_test_teardown(test_csv_line_ends, teardown),
		cmocka_unit_test_teardown(test_csv_header_errors, teardown),
		cmocka_unit_test_teardown(test_csv_row_errors, teardown),
		cmocka_unit_test_teardown(test_csv_action_errors, teardown),
		cmocka_unit_test_teardown(test_csv_lengths, teardown),
		cmocka_unit_test_teardown(test_csv_duplicates, teardown),
		cmocka_unit_test_teardown(test_csv_syntax, teardown),
		cmocka_unit_test_teardown(test_jsonl_happy, teardown),
		cmocka_unit_test_teardown(test_jsonl_errors, teardown),
		cmocka_unit_test_teardown(test_bounds, teardown),
		cmocka_unit_test_teardown(test_many_rows, teardown),
		cmocka_unit_test_teardown(test_batches, teardown),
		cmocka_unit_test_teardown(test_format_of, teardown),
		cmocka_unit_test_teardown(test_print_errors, teardown),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests_name("test_import", tests, NULL, NULL);
}
