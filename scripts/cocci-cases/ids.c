/* expect: none */
/* The fixed form: an id, not a pointer (the file uses current->mm, so the
 * rules run on it). */
struct ctx { u64 mm_seqid; };

int bind(struct ctx *c)
{
	if (!current->mm)
		return -EINVAL;
	c->mm_seqid = current_mm_seqid();
	return 0;
}

int check(struct ctx *c)
{
	return !mm_seqid_is_current(c->mm_seqid);
}
