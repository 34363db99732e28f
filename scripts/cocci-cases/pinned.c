/* expect: none */
/* Pinned where it is stored, as KVM does: no report. */
struct ctx { struct mm_struct *mm; };

void bind(struct ctx *c) { mmgrab(current->mm); c->mm = current->mm; }
void bind_field(struct ctx *c) { c->mm = current->mm; mmgrab(c->mm); }
void bind_task(struct ctx *c) { struct mm_struct *m = get_task_mm(current); c->mm = current->mm; }

int check(struct ctx *c)
{
	return c->mm != current->mm;
}
