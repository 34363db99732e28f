/* expect: 21 */
/* The same with an assignment, and an mmget() put again. */
struct ctx { struct mm_struct *mm; };

void bind(struct ctx *c)
{
	struct mm_struct *m;

	m = get_task_mm(current);
	mmput(m);
	c->mm = current->mm;
}

void bind2(struct ctx *c)
{
	mmget(current->mm);
	mmput(current->mm);
	c->mm = current->mm;
}

int check(struct ctx *c) { return current->mm == c->mm; }
