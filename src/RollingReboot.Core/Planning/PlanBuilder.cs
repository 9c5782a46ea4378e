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
    private readonly PlanFindings _findings = new();

    public PlanBuilder(PoolSnapshot pool, PlanOptions options, PlanConstraints constraints)
    {
        // The route first: it decides the migration model every estimate of the plan uses.
        _index = new PlanIndex(pool, MigrationRouting.Apply(pool, options, _findings), constraints);
    }

    public Plan Build()
    {
        var findings = _findings;
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
