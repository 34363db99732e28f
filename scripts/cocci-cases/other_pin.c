/* expect: 11 */
/* A pin of a same-named field in another function does not count. */
struct ctx { struct mm_struct *mm; };
struct other { struct mm_struct *mm; };

void other_init(struct other *o) { o->mm = get_task_mm(current); mmget(o->mm); }
void bind(struct ctx *c) { c->mm = current->mm; }

int check(struct ctx *c)
{
	return c->mm != current->mm;
}
