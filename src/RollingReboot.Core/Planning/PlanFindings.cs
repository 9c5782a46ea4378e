namespace RollingReboot.Core.Planning;

/// <summary>
/// The blockers and warnings of one plan, in the order the planner's jobs find them (hosts, pool, VMs, placement,
/// migrate-back, assembly): each job appends, the plan lists them as found. Every problem is reported at once.
/// </summary>
internal sealed class PlanFindings
{
    private readonly List<Blocker> _blockers = [];
    private readonly List<PlanWarning> _warnings = [];

    public IReadOnlyList<Blocker> Blockers => _blockers;

    public IReadOnlyList<PlanWarning> Warnings => _warnings;

    public void Block(Blocker blocker) => _blockers.Add(blocker);

    public void Block(IEnumerable<Blocker> blockers) => _blockers.AddRange(blockers);

    public void Warn(PlanWarning warning) => _warnings.Add(warning);
}
