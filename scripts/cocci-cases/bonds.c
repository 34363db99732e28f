/* expect: none */
/* References held by a notifier or an SVA bond taken where the pointer is stored. */
struct ctx { struct mm_struct *mm; void *sva; struct mmu_notifier mn; };

void bind_sva(struct ctx *c, struct device *dev)
{
	c->sva = iommu_sva_bind_device(dev, current->mm);
	c->mm = current->mm;
}

void bind_mn(struct ctx *c)
{
	if (mmu_notifier_register(&c->mn, current->mm))
		return;
	c->mm = current->mm;
}

int check(struct ctx *c)
{
	return current->mm == c->mm;
}
