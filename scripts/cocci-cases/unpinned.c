/* expect: 9 */
/* A bare store and a compare in another function: the ABA. */
struct ctx { struct mm_struct *mm; };

void bind(struct ctx *c) { c->mm = current->mm; }

int check(struct ctx *c)
{
	return c->mm != current->mm;
}
