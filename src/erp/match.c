/*
 * match.c - which product does "chawal", "rcie" or "basmati" mean?
 *
 * Every product has keys: its name and each of its aliases (store aliases
 * are a comma list). A key is a list of canonical words; the phrase the
 * customer typed is canonicalised the same way, so both sides meet in the
 * middle:
 *
 *   canon(w) = synonym(w)             a built-in Hinglish table: chawal → rice
 *            | synonym(singular(w))   "andey"/"eggs" → egg
 *            | singular(w)            tomatoes → tomato, biscuits → biscuit
 *
 * A phrase matches a key when every phrase word matches some key word:
 * equal canonical forms cost 0; otherwise the Damerau–Levenshtein distance
 * (optimal string alignment, transpositions count 1) is the cost when it is
 * ≤ 1 for words of 4–6 letters or ≤ 2 for longer ones (shorter words must be
 * exact). A typo of a Hinglish word ("chawl") is tried against the synonym
 * table the same way. The best product has the least (cost, key words left
 * unmatched): "rice" picks Rice over Basmati Rice, "rcie" still finds Rice.
 * When two products tie for best the answer is AMBIGUOUS and they are
 * offered as suggestions; when none matches, the closest three products
 * (most phrase words matched, then fewest key words left over, then least
 * edit distance, then name) are.
 *
 * Cost: one pass over products × keys × words, with edit distances only
 * where the length difference allows a match; a second pass, with full
 * distances (pruned by the length difference too), only when nothing
 * matched. Words longer than ERP_MATCH_MAX_WORD only match exactly; a phrase
 * is read up to 8 words. Thread-safe: static const tables only.
 */
#include <string.h>

#include "core/err.h"
#include "erp/erp_internal.h"

#define NO_MATCH 1000000

/* Hinglish (and common spelling) → the English word a catalogue uses; kept
 * sorted by `from` (bsearch; a unit test checks the order). */
static const struct {
	const char *from, *to;
} synonyms[] = {
        {"aata", "atta"},   {"aataa", "atta"},   {"aloo", "potato"},  {"alu", "potato"},
        {"anda", "egg"},    {"anday", "egg"},    {"ande", "egg"},     {"andey", "egg"},
        {"atta", "atta"},   {"chaawal", "rice"}, {"chai", "tea"},     {"chaipatti", "tea"},
        {"chaval", "rice"}, {"chawal", "rice"},  {"cheeni", "sugar"}, {"chini", "sugar"},
        {"daal", "dal"},    {"dal", "dal"},      {"dhal", "dal"},     {"doodh", "milk"},
        {"dudh", "milk"},   {"namak", "salt"},   {"patti", "tea"},    {"pyaaz", "onion"},
        {"pyaj", "onion"},  {"pyaz", "onion"},   {"sabun", "soap"},   {"shakkar", "sugar"},
        {"tel", "oil"},
};

#define NSYN (sizeof(synonyms) / sizeof(synonyms[0]))

static const char *synonym_exact(const char *w)
{
	size_t lo = 0, hi = NSYN;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(w, synonyms[mid].from);
		if (c == 0)
			return synonyms[mid].to;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int erp__synonyms_sorted(void)
{
	for (size_t i = 1; i < NSYN; i++)
		if (strcmp(synonyms[i - 1].from, synonyms[i].from) >= 0)
			return 0;
	return 1;
}

/* The typo allowance for a word of len bytes (spec: 4–6 → 1, 7+ → 2). */
static int allowance(size_t len)
{
	if (len >= 7)
		return 2;
	if (len >= 4)
		return 1;
	return 0;
}

/*
 * Optimal string alignment distance over bytes, three rolling rows; gives
 * up with `limit` as soon as a whole row is at or above it (the distance
 * can only grow from there).
 */
static int osa_distance(const char *a, size_t la, const char *b, size_t lb, int limit)
{
	int rows[3][ERP_MATCH_MAX_WORD + 1];
	int *pp = rows[0], *prev = rows[1], *cur = rows[2];

	if (la > ERP_MATCH_MAX_WORD || lb > ERP_MATCH_MAX_WORD) {
		if (la == lb && memcmp(a, b, la) == 0)
			return 0;
		return limit;
	}
	for (size_t j = 0; j <= lb; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int rowmin;
		cur[0] = (int)i;
		rowmin = cur[0];
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (prev[j - 1] + cost < v)
				v = prev[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			cur[j] = v;
			if (v < rowmin)
				rowmin = v;
		}
		if (rowmin >= limit)
			return limit;
		int *t = pp;
		pp = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb] < limit ? prev[lb] : limit;
}

int erp__edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	return osa_distance(a, la, b, lb, (int)(la > lb ? la : lb));
}

/* singular of an ASCII word into tmp; returns w itself when unchanged */
static const char *singular(const char *w, char *tmp, size_t tmpsz)
{
	size_t n = strlen(w);
	if (n + 1 > tmpsz)
		return w;
	for (size_t i = 0; i < n; i++)
		if (!((w[i] >= 'a' && w[i] <= 'z')))
			return w;
	if (n > 4 && strcmp(w + n - 3, "ies") == 0) {
		memcpy(tmp, w, n - 3);
		memcpy(tmp + n - 3, "y", 2);
		return tmp;
	}
	if (n > 4 && strcmp(w + n - 3, "oes") == 0) {
		memcpy(tmp, w, n - 2);
		tmp[n - 2] = '\0';
		return tmp;
	}
	if (n > 3 && w[n - 1] == 's' && w[n - 2] != 's') {
		memcpy(tmp, w, n - 1);
		tmp[n - 1] = '\0';
		return tmp;
	}
	return w;
}

const char *erp__canon_word(const char *w, char *tmp, size_t tmpsz)
{
	const char *s = synonym_exact(w);
	if (s)
		return s;
	const char *sg = singular(w, tmp, tmpsz);
	if (sg != w && (s = synonym_exact(sg)) != NULL)
		return s;
	return sg;
}

/* ---- building the index --------------------------------------------------- */

static void key_from_text(struct erp_key *k, const char *text, size_t len, struct arena *a)
{
	char *copy = arena_strndup(a, text, len);
	struct erp_token *toks;
	int ntok;
	char tmp[ERP_MATCH_MAX_WORD + 8];

	erp__tokenize(a, copy, &toks, &ntok);
	k->words = arena_alloc(a, sizeof(*k->words) * (size_t)(ntok ? ntok : 1));
	k->nwords = 0;
	for (int i = 0; i < ntok;) {
		const char *size;
		int span;
		if (toks[i].sep || !toks[i].s[0]) {
			i++;
			continue;
		}
		/* "500 ml" and "500ml" are one word, as the parser reads them */
		if ((span = erp__size_word(a, toks, ntok, i, &size)) > 0) {
			k->words[k->nwords++] = size;
			i += span;
			continue;
		}
		const char *c = erp__canon_word(toks[i].s, tmp, sizeof(tmp));
		k->words[k->nwords++] = c == tmp ? arena_strdup(a, tmp) : c;
		i++;
	}
}

void erp__catalog_init(struct erp_catalog *cat, const struct product *p, int n, struct arena *a)
{
	cat->n = n > 0 ? n : 0;
	cat->items = arena_calloc(a, sizeof(*cat->items) * (size_t)(cat->n ? cat->n : 1));
	for (int i = 0; i < cat->n; i++) {
		struct erp_catalog_item *it = &cat->items[i];
		const char *al = p[i].aliases ? p[i].aliases : "";
		int nal = 1;
		for (const char *s = al; *s; s++)
			nal += *s == ',';
		it->p = &p[i];
		it->keys = arena_calloc(a, sizeof(*it->keys) * (size_t)(nal + 1));
		it->nkeys = 0;
		const char *name = p[i].name ? p[i].name : "";
		key_from_text(&it->keys[it->nkeys], name, strlen(name), a);
		if (it->keys[it->nkeys].nwords)
			it->nkeys++;
		for (const char *s = al; *s;) {
			const char *e = strchr(s, ',');
			size_t len = e ? (size_t)(e - s) : strlen(s);
			key_from_text(&it->keys[it->nkeys], s, len, a);
			if (it->keys[it->nkeys].nwords)
				it->nkeys++;
			s += len;
			if (*s == ',')
				s++;
		}
	}
}

/* ---- matching ----------------------------------------------------------------- */

/* One phrase word in the forms it may take, each with its own base cost. */
struct qword {
	int nforms;
	const char *form[2];
	int cost[2];
	size_t typed_len;
	char buf[2][ERP_MATCH_MAX_WORD + 8];
};

static void qword_init(struct qword *q, const char *w)
{
	const char *c = erp__canon_word(w, q->buf[0], sizeof(q->buf[0]));
	q->typed_len = strlen(w);
	if (c == w && q->typed_len < sizeof(q->buf[0])) {
		/* own a copy: w may be the caller's temporary */
		memcpy(q->buf[0], w, q->typed_len + 1);
		c = q->buf[0];
	}
	q->nforms = 1;
	q->form[0] = c;
	q->cost[0] = 0;
	if (synonym_exact(w) || q->typed_len > ERP_MATCH_MAX_WORD)
		return;
	/* a misspelt Hinglish word: "chawl" → chawal → rice */
	int allow = allowance(q->typed_len), best = allow + 1;
	const char *to = NULL;
	for (size_t i = 0; i < NSYN && allow > 0; i++) {
		size_t fl = strlen(synonyms[i].from);
		size_t diff = fl > q->typed_len ? fl - q->typed_len : q->typed_len - fl;
		if ((int)diff > allow)
			continue;
		int d = osa_distance(w, q->typed_len, synonyms[i].from, fl, allow + 1);
		if (d < best) {
			best = d;
			to = synonyms[i].to;
		}
	}
	if (to && strcmp(to, c) != 0) {
		q->form[1] = to;
		q->cost[1] = best;
		q->nforms = 2;
	}
}

/* Cost of phrase word q against key word kw; NO_MATCH beyond the allowance. */
static int word_cost(const struct qword *q, const char *kw)
{
	int best = NO_MATCH;
	size_t kl = strlen(kw);
	for (int f = 0; f < q->nforms; f++) {
		const char *w = q->form[f];
		size_t wl = strlen(w);
		if (wl == kl && memcmp(w, kw, wl) == 0) {
			if (q->cost[f] < best)
				best = q->cost[f];
			continue;
		}
		if (q->cost[f] > 0)
			continue; /* no typo on top of a typo */
		int allow = allowance(q->typed_len < wl ? q->typed_len : wl);
		size_t diff = wl > kl ? wl - kl : kl - wl;
		if (allow == 0 || (int)diff > allow)
			continue;
		int d = osa_distance(w, wl, kw, kl, allow + 1);
		if (d <= allow && d < best)
			best = d;
	}
	return best;
}

/*
 * Closeness of q to kw for ranking suggestions: the edit distance, capped
 * at `bound` (the best so far) and at SUGGEST_FAR: beyond a few edits all
 * words are equally far, which keeps long hostile words cheap.
 */
#define SUGGEST_FAR 4
static int word_distance(const struct qword *q, const char *kw, int bound)
{
	size_t kl = strlen(kw);
	if (bound > SUGGEST_FAR)
		bound = SUGGEST_FAR;
	for (int f = 0; f < q->nforms; f++) {
		const char *w = q->form[f];
		size_t wl = strlen(w);
		size_t diff = wl > kl ? wl - kl : kl - wl;
		if (diff >= (size_t)bound)
			continue;
		bound = osa_distance(w, wl, kw, kl, bound);
	}
	return bound;
}

struct score {
	int full;    /* every phrase word matched */
	int cost;    /* Σ word costs (full only) */
	int extra;   /* key words left unmatched */
	int matched; /* phrase words matched (for suggestions) */
	int dist;    /* least distance between any phrase and key word */
};

static int score_better(const struct score *a, const struct score *b)
{
	if (a->full != b->full)
		return a->full > b->full;
	if (a->full)
		return a->cost != b->cost ? a->cost < b->cost : a->extra < b->extra;
	if (a->matched != b->matched)
		return a->matched > b->matched;
	if (a->matched && a->extra != b->extra)
		return a->extra < b->extra;
	return a->dist < b->dist;
}

static int score_equal(const struct score *a, const struct score *b)
{
	return a->full && b->full && a->cost == b->cost && a->extra == b->extra;
}

/* Scores phrase q against key k; the distance only when want_dist. */
static void score_key(const struct qword *q, int nq, const struct erp_key *k, int want_dist,
                      struct score *s)
{
	unsigned char used[64];
	int nused = 0;

	memset(used, 0, sizeof(used));
	s->full = 1;
	s->cost = 0;
	s->matched = 0;
	s->dist = NO_MATCH;
	for (int i = 0; i < nq; i++) {
		int best = NO_MATCH, bj = -1;
		for (int j = 0; j < k->nwords; j++) {
			int c = word_cost(&q[i], k->words[j]);
			if (c < best) {
				best = c;
				bj = j;
			}
			if (want_dist)
				s->dist = word_distance(&q[i], k->words[j], s->dist);
		}
		if (bj < 0) {
			s->full = 0;
			continue;
		}
		s->matched++;
		s->cost += best;
		if (bj < 64 && !used[bj]) {
			used[bj] = 1;
			nused++;
		}
	}
	s->extra = k->nwords - nused;
	if (s->extra < 0)
		s->extra = 0;
}

/* The best score of any of the product's keys; 0 if it has none. */
static int score_product(const struct erp_catalog_item *it, const struct qword *q, int nq,
                         int want_dist, struct score *ps)
{
	int have = 0;
	for (int k = 0; k < it->nkeys; k++) {
		struct score s;
		score_key(q, nq, &it->keys[k], want_dist, &s);
		if (!have || score_better(&s, ps)) {
			*ps = s;
			have = 1;
		}
	}
	return have;
}

void erp__match(const struct erp_catalog *cat, const char *const *words, int nwords,
                struct erp_match *out)
{
	struct qword q[8];
	struct score best = {0, 0, 0, 0, NO_MATCH};
	int nq = 0, nbest = 0;
	/* the closest products so far, best first (pass 2) */
	struct score top[ERP_MAX_SUGGEST];
	int topi[ERP_MAX_SUGGEST], ntop = 0;
	const struct product *tied[ERP_MAX_SUGGEST];

	memset(out, 0, sizeof(*out));
	/* a phrase of more than 8 words is not an item name: keep the first 8;
	 * "500 ml" is read as one word "500ml", as in the keys */
	for (int i = 0; i < nwords && nq < 8; i++) {
		char size[40];
		int span;
		if (!words[i] || !words[i][0])
			continue;
		span = erp__size_canon(words[i], i + 1 < nwords ? words[i + 1] : NULL, size,
		                       sizeof(size));
		if (span > 0) {
			qword_init(&q[nq++], size);
			i += span - 1;
			continue;
		}
		qword_init(&q[nq++], words[i]);
	}
	if (nq == 0 || cat->n == 0)
		return;

	/* pass 1: the products every phrase word matches */
	for (int i = 0; i < cat->n; i++) {
		struct score ps = {0, 0, 0, 0, NO_MATCH};
		if (!score_product(&cat->items[i], q, nq, 0, &ps) || !ps.full)
			continue;
		if (nbest == 0 || score_better(&ps, &best)) {
			best = ps;
			nbest = 0;
			tied[nbest++] = cat->items[i].p;
		} else if (score_equal(&ps, &best)) {
			if (nbest < ERP_MAX_SUGGEST)
				tied[nbest] = cat->items[i].p;
			nbest++;
		}
	}
	if (nbest == 1) {
		out->kind = ERP_MATCH_ONE;
		out->product = tied[0];
		return;
	}
	if (nbest > 1) {
		out->kind = ERP_MATCH_AMBIGUOUS;
		out->nsuggest = nbest < ERP_MAX_SUGGEST ? nbest : ERP_MAX_SUGGEST;
		for (int j = 0; j < out->nsuggest; j++)
			out->suggest[j] = tied[j];
		return;
	}

	/* pass 2 (no match): the closest products, for suggestions */
	for (int i = 0; i < cat->n; i++) {
		struct score ps = {0, 0, 0, 0, NO_MATCH};
		if (!score_product(&cat->items[i], q, nq, 1, &ps))
			continue;
		int pos = ntop;
		while (pos > 0 && score_better(&ps, &top[pos - 1]))
			pos--;
		if (pos >= ERP_MAX_SUGGEST)
			continue;
		int last = ntop < ERP_MAX_SUGGEST ? ntop : ERP_MAX_SUGGEST - 1;
		for (int j = last; j > pos; j--) {
			top[j] = top[j - 1];
			topi[j] = topi[j - 1];
		}
		top[pos] = ps;
		topi[pos] = i;
		if (ntop < ERP_MAX_SUGGEST)
			ntop++;
	}
	out->kind = ERP_MATCH_NONE;
	out->nsuggest = ntop;
	/* a near miss: a word in common, or within twice the typo allowance */
	out->close = ntop > 0 &&
	             (top[0].matched > 0 ||
	              (top[0].dist < SUGGEST_FAR && top[0].dist <= 2 * allowance(q[0].typed_len)));
	for (int j = 0; j < ntop; j++)
		out->suggest[j] = cat->items[topi[j]].p;
}
