/* expect: 11 */
/* One store is pinned, the other not: the compare is reported once. */
struct ctx { struct mm_struct *mm; };

void bind_pinned(struct ctx *c) { mmgrab(current->mm); c->mm = current->mm; }
void bind_bare(struct ctx *c) { c->mm = current->mm; }
void bind_bare_again(struct ctx *c) { c->mm = current->mm; }

int check(struct ctx *c)
{
	return c->mm != current->mm;
}
