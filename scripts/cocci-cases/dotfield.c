/* expect: 9 */
/* A store into a field of an embedded struct, as etnaviv's userptr.mm. */
struct ctx { struct { struct mm_struct *mm; } u; };

void bind(struct ctx *c) { c->u.mm = current->mm; }

int check(struct ctx *c)
{
	return c->u.mm != current->mm;
}
