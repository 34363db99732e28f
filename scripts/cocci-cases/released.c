/* expect: 13 */
/* A reference taken for a call and put again is no pin. */
struct ctx { struct mm_struct *mm; };

void bind(struct ctx *c)
{
	struct mm_struct *m = get_task_mm(current);

	mmput(m);
	c->mm = current->mm;
}

int check(struct ctx *c) { return current->mm == c->mm; }
