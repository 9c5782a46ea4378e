using static RollingReboot.Core.Planning.PlanText;

namespace RollingReboot.Core.Planning;

/// <summary>
/// From the chosen simulation to the <see cref="Plan"/>: the migrate-back, the steps with their migrations and
/// estimates wave by wave, the total estimate and the decision for every host (reboot order, then the skipped).
/// </summary>
internal sealed class PlanAssembler
{
    private readonly PlanIndex _index;
    private readonly HostSelection _hosts;
    private readonly PlanFindings _findings;

    public PlanAssembler(PlanIndex index, HostSelection hosts, PlanFindings findings)
    {
        _index = index;
        _hosts = hosts;
        _findings = findings;
    }

    /// <summary>Every VM the run moved back to its original host, once all hosts are rebooted, where room allows.</summary>
    public List<PlannedMigration> PlanReturn(SimulationResult result)
    {
        var sim = result.State;
        var home = _index.Home;
        var memory = _index.Memory;
        var returns = new List<PlannedMigration>();

        // A VM that finds no room yet is tried again after the others, until nothing changes.
        var pending = ReturnOrder(result);
        bool progress = true;
        while (pending.Count > 0 && progress)
        {
            progress = false;
            var later = new List<int>();
            foreach (int v in pending)
            {
                int to = home[v], from = sim.Location[v];
                if (from == to)
                {
                    // Gone back already, with its group.
                    continue;
                }

                // A group kept together goes back whole or not at all.
                int[] group = _index.Together[v] >= 0
                    ? [.. _index.TogetherMembers[_index.Together[v]].Where(m => sim.Location[m] >= 0 && sim.Location[m] != home[m])]
                    : [v];
                if (sim.Free[to] < group.Sum(m => memory[m]) || group.Any(m => sim.Conflicts(m, to) || sim.Location[m] != from))
                {
                    later.Add(v);
                    continue;
                }

                foreach (int m in group)
                {
                    sim.Move(m, to);
                    returns.Add(_index.Migration(m, from, to));
                }

                progress = true;
            }

            pending = later;
        }

        var stayed = pending.Select(v => _index.Vms[v].Name).ToList();
        if (stayed.Count > 0)
        {
            _findings.Warn(new PlanWarning(
                PlanCodes.ReturnSkipped,
                Invariant($"{stayed.Count} VM(s) cannot go back to their original host after the run (no room or anti-affinity then): {NameList(stayed)}."),
                "They stay where the run put them; move them by hand later if needed."));
        }

        return returns;
    }

    public Plan Assemble(SimulationResult result, List<PlannedMigration> returns)
    {
        var options = _index.Options;
        var (steps, end) = Steps(result);

        double returnSeconds = returns.Count > 0 ? PlanEstimator.EvacuationSeconds(returns, options) : 0;
        var everything = steps.SelectMany(s => s.Migrations).Concat(returns).ToList();
        var estimate = new PlanEstimate(end + returnSeconds, everything.Count, everything.Sum(m => options.MigrationModel.WireBytes(m.MemoryBytes)))
        {
            MemoryBytes = everything.Sum(m => m.MemoryBytes),
            ReturnSeconds = returnSeconds,
        };

        // Hosts in reboot order, then those left out in canonical order.
        var decisions = new List<HostDecision>();
        foreach (var step in result.Steps)
        {
            decisions.Add(_hosts.Decision(step.Host));
        }

        for (int h = 0; h < _index.HostCount; h++)
        {
            if (!_hosts.InRun(h))
            {
                decisions.Add(_hosts.Decision(h));
            }
        }

        if (steps.Count == 0)
        {
            _findings.Warn(new PlanWarning(PlanCodes.NothingToReboot, "No host is to be rebooted.", "Check the hosts to include or ignore, and whether any host needs a reboot."));
        }

        return new Plan(_index.Pool, options, decisions, steps, returns, [.. _findings.Blockers], [.. _findings.Warnings], estimate);
    }

    /// <summary>
    /// The VMs away from home at the end of the run, by home host in reverse reboot order (the last host evacuated
    /// is empty at the end, and each return frees room for the next), largest first.
    /// </summary>
    private List<int> ReturnOrder(SimulationResult result)
    {
        var sim = result.State;
        var home = _index.Home;
        var memory = _index.Memory;
        return result.Steps.AsEnumerable().Reverse()
            .SelectMany(step => Enumerable.Range(0, _index.VmCount)
                .Where(v => home[v] == step.Host && sim.Location[v] != step.Host && sim.Location[v] != PlacementState.Halted)
                .OrderByDescending(v => memory[v]).ThenBy(v => v))
            .ToList();
    }

    /// <summary>The steps, wave after wave, and the estimated seconds from the start of the run to the end of the last wave.</summary>
    private (List<PlanStep> Steps, double End) Steps(SimulationResult result)
    {
        var steps = new List<PlanStep>();
        double start = 0;
        foreach (var wave in result.Steps.GroupBy(s => s.Wave).OrderBy(g => g.Key))
        {
            start += AddWave(wave.ToList(), start, steps);
        }

        return (steps, start);
    }

    /// <summary>
    /// The steps of one wave, starting at <paramref name="start"/>: the hosts of a wave evacuate at once, so their
    /// migrations are estimated together. Returns the wave's seconds (its longest step).
    /// </summary>
    private double AddWave(List<StepDraft> drafts, double start, List<PlanStep> steps)
    {
        var options = _index.Options;
        var migrations = drafts.Select(d => d.Moves.Select(m => _index.Migration(m.Vm, m.From, m.To)).ToList()).ToList();
        var all = migrations.SelectMany(m => m).ToList();
        var done = PlanEstimator.CompletionSeconds(all, options);
        double waveSeconds = 0;
        int offset = 0;
        for (int k = 0; k < drafts.Count; k++)
        {
            double evacuation = 0;
            for (int j = 0; j < migrations[k].Count; j++)
            {
                evacuation = Math.Max(evacuation, done[offset + j]);
            }

            offset += migrations[k].Count;
            double estimated = PlanEstimator.StepSeconds(evacuation, options);
            waveSeconds = Math.Max(waveSeconds, estimated);
            var draft = drafts[k];
            var host = _index.Hosts[draft.Host];
            steps.Add(new PlanStep(steps.Count + 1, draft.Wave, host.Uuid, host.Name, draft.IsMaster, migrations[k], evacuation, estimated)
            {
                StartSeconds = start,
                Shutdowns = [.. Enumerable.Range(0, _index.VmCount).Where(v => _index.IsPinned(v) && _index.Home[v] == draft.Host)
                    .Select(v => new PinnedVm(_index.Vms[v].Uuid, _index.Vms[v].Name, host.Uuid, host.Name, _index.Memory[v], _index.Pinned[v]!))],
            });
        }

        return waveSeconds;
    }
}
