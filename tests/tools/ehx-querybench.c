/*
 * ehx-querybench — whole-picture queries end to end for `make bench`
 * (issue 6): what a person at an agency waits for. Each query is one
 * connection to the agent's local socket, exactly as the ehx command
 * line makes it (agent/cli/ehx.c exchange_lr: AF_UNIX SOCK_SEQPACKET, one
 * LocalRequest{body{query_picture{nhs_number}}, as_role}, one LocalReply),
 * for an NHS number picked at random from a file (ehx-gen --nhs-out
 * writes one). The agent signs, the broker verifies, decides, audits and
 * commits, the agent verifies the signed answer: all of it is timed, from
 * connect to the reply parsed, one query after another.
 *
 * A query counts as answered only when the broker's PictureResult comes
 * back; an error from the agent or the broker is a refusal (the first is
 * shown on standard error). Prints one JSON object:
 *   {"count", "answered", "refused", "p50_us", "p99_us", "p999_us",
 *    "max_us", "mean_us", "mean_flags", "seconds", "queries_per_s"}
 * Exit status: 0 when every query was answered, 1 otherwise, 2 on bad
 * usage.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ehx.pb-c.h"
#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/names.h"
#include "ehx/nhs.h"

#define LOCAL_MAX (EHX_MAX_MESSAGE + 1024)   /* as agent/cli/ehx.c */
#define MAX_COUNT 10000000L
#define MAX_NHS 10000000L

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* SplitMix64: which numbers are asked about follows --seed. */
static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int
cmp_double(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;

	return p < q ? -1 : p > q ? 1 : 0;
}

/* The q-quantile of n sorted values (nearest rank). */
static double
quantile(const double *v, size_t n, double q)
{
	size_t k = (size_t)(q * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	return v[(k > n ? n : k) - 1];
}

/* NHS numbers (one a line; blank lines and # comments skipped). */
static int
read_nhs(const char *path, char (**list)[EHX_NHS_LEN + 1], size_t *n)
{
	FILE *f;
	char line[64];
	size_t cap = 0;

	*list = NULL;
	*n = 0;
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "ehx-querybench: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, " \t\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (!ehx_nhs_valid(line)) {
			fprintf(stderr, "ehx-querybench: %s: \"%.16s\" is not a "
			    "valid NHS number\n", path, line);
			fclose(f);
			return -1;
		}
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 1024;
			char (*nl)[EHX_NHS_LEN + 1];

			if (ncap > (size_t)MAX_NHS || (nl = realloc(*list,
			    ncap * sizeof(*nl))) == NULL) {
				fprintf(stderr, "ehx-querybench: %s: too many "
				    "numbers\n", path);
				fclose(f);
				return -1;
			}
			*list = nl;
			cap = ncap;
		}
		memcpy((*list)[(*n)++], line, EHX_NHS_LEN + 1);
	}
	fclose(f);
	if (*n == 0) {
		fprintf(stderr, "ehx-querybench: %s holds no NHS numbers\n",
		    path);
		return -1;
	}
	return 0;
}

enum outcome { ANSWERED, REFUSED, FAILED };

/*
 * Ask the agent at sa for nhs's whole picture as role (0: the users file's
 * default). ANSWERED with the flags shown in *flags; REFUSED (an Error,
 * why in why); FAILED when no valid answer came (why says so).
 */
static enum outcome
ask(const struct sockaddr_un *sa, const char *nhs, int role,
    unsigned char *buf, int timeout_ms, size_t *flags, char *why,
    size_t whysz)
{
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Body *rb;
	struct pollfd pfd;
	enum outcome o = FAILED;
	ssize_t got;
	size_t n;
	int fd, rc;

	*flags = 0;
	qp.nhs_number = (char *)nhs;
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
	b.query_picture = &qp;
	lr.body = &b;
	lr.as_role = (Ehx__Role)role;
	n = ehx__local_request__get_packed_size(&lr);
	if (n > LOCAL_MAX) {
		snprintf(why, whysz, "request too large");
		return FAILED;
	}
	ehx__local_request__pack(&lr, buf);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		snprintf(why, whysz, "cannot reach the agent at %s: %s",
		    sa->sun_path, strerror(errno));
		goto out;
	}
	if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
		snprintf(why, whysz, "sending to the agent failed: %s",
		    strerror(errno));
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while ((rc = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	if (rc <= 0) {
		snprintf(why, whysz, "the agent did not answer in %d ms",
		    timeout_ms);
		goto out;
	}
	got = recv(fd, buf, LOCAL_MAX, MSG_TRUNC);
	if (got <= 0 || got > LOCAL_MAX || (rep = ehx__local_reply__unpack(
	    NULL, (size_t)got, buf)) == NULL) {
		snprintf(why, whysz, "the agent closed the connection without "
		    "a valid answer");
		goto out;
	}
	rb = rep->reply;
	if (rb != NULL && !rep->from_agent &&
	    rb->payload_case == EHX__BODY__PAYLOAD_PICTURE &&
	    rb->picture != NULL) {
		for (size_t i = 0; i < rb->picture->n_involvements; i++)
			*flags += rb->picture->involvements[i]->n_flags;
		o = ANSWERED;
	} else if (rb != NULL && rb->payload_case == EHX__BODY__PAYLOAD_ERROR &&
	    rb->error != NULL) {
		snprintf(why, whysz, "%s%s: %s", rep->from_agent ?
		    "from the agent: " : "", ehx_errname(ehx_err_from_wire(
		    rb->error->code)), rb->error->message);
		o = REFUSED;
	} else {
		snprintf(why, whysz, "%s answer without a picture (payload "
		    "%d)", rep->from_agent ? "the agent's" : "an",
		    rb != NULL ? (int)rb->payload_case : -1);
		o = REFUSED;
	}
out:
	if (rep != NULL)
		ehx__local_reply__free_unpacked(rep, NULL);
	if (fd >= 0)
		close(fd);
	return o;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: ehx-querybench --agent SOCKET --nhs-file FILE --count N\n"
"                      [--warmup W] [--as ROLE] [--seed S] [--timeout-ms T]\n"
"\n"
"Whole-picture queries through an agent's local socket, one after another,\n"
"for NHS numbers picked at random from FILE (one a line; ehx-gen --nhs-out\n"
"writes one); each timed from connect to the reply parsed.\n"
"\n"
"  --agent SOCKET    the agent's socket (its agent.sock)\n"
"  --nhs-file FILE   the NHS numbers to ask about\n"
"  --count N         timed queries, 1..%ld\n"
"  --warmup W        untimed queries first, 0..%ld (default 100)\n"
"  --as ROLE         the role to ask as (information_officer, practitioner);\n"
"                    the users file must grant it to this account\n"
"  --seed S          which numbers are picked (default 1)\n"
"  --timeout-ms T    a query unanswered after T ms fails, 1..600000\n"
"                    (default 30000)\n"
"\n"
"Prints {\"count\", \"answered\", \"refused\", \"p50_us\", \"p99_us\",\n"
"\"p999_us\", \"max_us\", \"mean_us\", ...}. Answered means a PictureResult\n"
"from the broker. Exit status 0 when all were answered, 1 if not, 2 on\n"
"bad usage.\n", MAX_COUNT, MAX_COUNT);
}

static long
num_arg(const char *name, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "ehx-querybench: --%s needs a whole number in "
		    "%ld..%ld, not \"%s\"\n", name, lo, hi, s);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "agent", required_argument, NULL, 'a' },
		{ "nhs-file", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "as", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 's' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *agent = NULL, *file = NULL;
	char (*nhs)[EHX_NHS_LEN + 1] = NULL;
	size_t nnhs = 0, flags = 0, f;
	long count = 0, warmup = 100, answered = 0, refused = 0, failed = 0;
	int role = 0, timeout_ms = 30000, c, status = 1;
	uint64_t seed = 1;
	struct sockaddr_un sa;
	unsigned char *buf = NULL;
	double *us = NULL, sum = 0, t0, wall;
	char why[512];
	bool said = false;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		switch (c) {
		case 'a': agent = optarg; break;
		case 'f': file = optarg; break;
		case 'n': count = num_arg("count", optarg, 1, MAX_COUNT); break;
		case 'w':
			warmup = num_arg("warmup", optarg, 0, MAX_COUNT);
			break;
		case 'r':
			if ((role = ehx_role_parse(optarg)) <= 0) {
				fprintf(stderr, "ehx-querybench: --as: unknown "
				    "role \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 's':
			seed = (uint64_t)num_arg("seed", optarg, 0, INT32_MAX);
			break;
		case 't':
			timeout_ms = (int)num_arg("timeout-ms", optarg, 1,
			    600000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	if (optind != argc || agent == NULL || file == NULL || count == 0) {
		fprintf(stderr, "ehx-querybench: give --agent, --nhs-file and "
		    "--count (ehx-querybench --help)\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(agent) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ehx-querybench: socket path too long: %s\n",
		    agent);
		return 2;
	}
	memcpy(sa.sun_path, agent, strlen(agent) + 1);
	if (read_nhs(file, &nhs, &nnhs) != 0)
		return 2;
	if ((buf = malloc(LOCAL_MAX)) == NULL ||
	    (us = calloc((size_t)count, sizeof(*us))) == NULL) {
		fprintf(stderr, "ehx-querybench: out of memory\n");
		goto out;
	}
	for (long i = 0; i < warmup; i++)
		if (ask(&sa, nhs[rnd(&seed) % nnhs], role, buf, timeout_ms, &f,
		    why, sizeof(why)) == FAILED) {
			fprintf(stderr, "ehx-querybench: warm-up: %s\n", why);
			goto out;
		}
	wall = now_s();
	for (long i = 0; i < count; i++) {
		const char *n = nhs[rnd(&seed) % nnhs];
		enum outcome o;

		t0 = now_s();
		o = ask(&sa, n, role, buf, timeout_ms, &f, why, sizeof(why));
		us[i] = (now_s() - t0) * 1e6;
		sum += us[i];
		if (o == ANSWERED) {
			answered++;
			flags += f;
			continue;
		}
		if (o == REFUSED)
			refused++;
		else
			failed++;
		if (!said) {
			said = true;
			fprintf(stderr, "ehx-querybench: first refusal (%s): %s\n",
			    n, why);
		}
	}
	wall = now_s() - wall;
	qsort(us, (size_t)count, sizeof(*us), cmp_double);
	printf("{\"count\": %ld, \"answered\": %ld, \"refused\": %ld, "
	    "\"failed\": %ld, \"p50_us\": %.0f, \"p99_us\": %.0f, "
	    "\"p999_us\": %.0f, \"max_us\": %.0f, \"mean_us\": %.0f, "
	    "\"mean_flags\": %.2f, \"seconds\": %.2f, "
	    "\"queries_per_s\": %.0f}\n", count, answered, refused + failed,
	    failed, quantile(us, (size_t)count, 0.5),
	    quantile(us, (size_t)count, 0.99),
	    quantile(us, (size_t)count, 0.999), us[count - 1],
	    sum / (double)count, answered ? (double)flags / (double)answered :
	    0.0, wall, (double)count / wall);
	status = answered == count ? 0 : 1;
out:
	free(us);
	free(buf);
	free(nhs);
	return status;
}
