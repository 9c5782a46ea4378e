using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Planning;

/// <summary>
/// The work behind <see cref="EvacuationPlanner.Plan"/>, one job after the other over one <see cref="PlanIndex"/>:
/// host selection, checks, placement, assembly. Blockers and warnings are collected in that order, and planning
/// goes on after a blocker so every problem is reported at once.
/// </summary>
internal sealed class PlanBuilder
{
    private readonly PlanIndex _index;

    public PlanBuilder(PoolSnapshot pool, PlanOptions options, PlanConstraints constraints)
    {
        _index = new PlanIndex(pool, options, constraints);
    }

    public Plan Build()
    {
        var findings = new PlanFindings();
        var hosts = HostSelection.Decide(_index, findings);
        PlanChecks.CheckPool(_index, findings);
        PlanChecks.CheckVms(_index, hosts, findings);
        PlanChecks.CheckExistingAntiAffinity(_index, findings);

        var result = new PlacementSimulator(_index, hosts).Choose(findings);
        findings.Block(result.Failures);

        var assembler = new PlanAssembler(_index, hosts, findings);
        var returns = _index.Options.ReturnVms ? assembler.PlanReturn(result) : [];
        return assembler.Assemble(result, returns);
    }
}
