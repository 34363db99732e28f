/* expect: none */
/* The fixed form: an id, not a pointer. */
struct ctx { u64 mm_seqid; };

void bind(struct ctx *c) { c->mm_seqid = current_mm_seqid(); }

int check(struct ctx *c)
{
	return !mm_seqid_is_current(c->mm_seqid);
}
