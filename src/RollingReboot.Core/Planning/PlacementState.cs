namespace RollingReboot.Core.Planning;

/// <summary>A VM moved from one host to another (<see cref="PlacementState.Halted"/>: shut down) in a simulation.</summary>
internal readonly record struct VmMove(int Vm, int From, int To);

/// <summary>
/// The mutable state of one simulated run, and the only one: free memory, VM locations and group membership per
/// host, with an undo log for trial placements. Every change goes through <see cref="Move"/> (logged) and can be
/// taken back to a <see cref="Checkpoint"/>.
/// </summary>
internal sealed class PlacementState
{
    public const int Halted = -1;

    private readonly PlanIndex _index;
    private readonly List<VmMove> _log = [];
    private readonly long[] _free;
    private readonly int[] _location;

    // Members of each anti-affinity group per host: [host * groups + group].
    private readonly int[] _groupCount;
    private readonly int _groupTotal;

    // The same for the non-strict (preferred) anti-affinity groups.
    private readonly int[] _softCount;
    private readonly int _softTotal;

    public PlacementState(PlanIndex index)
    {
        _index = index;
        _free = [.. index.Hosts.Select(h => h.MemoryFree)];
        _location = [.. index.Home];
        _groupTotal = index.GroupNames.Length;
        _groupCount = new int[index.HostCount * _groupTotal];
        _softTotal = index.SoftGroupNames.Length;
        _softCount = new int[index.HostCount * _softTotal];
        for (int v = 0; v < _location.Length; v++)
        {
            foreach (int g in index.Groups[v])
            {
                _groupCount[(_location[v] * _groupTotal) + g]++;
            }

            foreach (int g in index.SoftGroups[v])
            {
                _softCount[(_location[v] * _softTotal) + g]++;
            }
        }
    }

    /// <summary>Free memory per host; it changes only through <see cref="Move"/>.</summary>
    public ReadOnlySpan<long> Free => _free;

    /// <summary>Host per VM, or <see cref="Halted"/>; it changes only through <see cref="Move"/>.</summary>
    public ReadOnlySpan<int> Location => _location;

    public int Checkpoint => _log.Count;

    /// <summary>Whether the VM may not go to the host: a hard placement rule forbids it, or the host already runs a VM
    /// of one of its anti-affinity groups.</summary>
    public bool Conflicts(int vm, int host)
    {
        if (_index.Forbidden(vm, host))
        {
            return true;
        }

        foreach (int g in _index.Groups[vm])
        {
            if (_groupCount[(host * _groupTotal) + g] > 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether the host already runs a VM of one of this VM's non-strict anti-affinity groups (a preference).</summary>
    public bool SoftConflicts(int vm, int host)
    {
        foreach (int g in _index.SoftGroups[vm])
        {
            if (_softCount[(host * _softTotal) + g] > 0)
            {
                return true;
            }
        }

        return false;
    }

    public void Move(int vm, int to)
    {
        int from = _location[vm];
        _log.Add(new VmMove(vm, from, to));
        Apply(vm, from, to);
    }

    public void Rollback(int checkpoint)
    {
        for (int k = _log.Count - 1; k >= checkpoint; k--)
        {
            var m = _log[k];
            Apply(m.Vm, m.To, m.From);
        }

        _log.RemoveRange(checkpoint, _log.Count - checkpoint);
    }

    /// <summary>
    /// One migration per VM moved since the checkpoint, in the order first moved: a VM re-placed within a step goes
    /// from where it was straight to where it ends; one back where it started does not move.
    /// </summary>
    public List<VmMove> NetMovesSince(int checkpoint)
    {
        var order = new List<int>();
        var first = new Dictionary<int, VmMove>();
        var last = new Dictionary<int, int>();
        for (int k = checkpoint; k < _log.Count; k++)
        {
            var m = _log[k];
            if (first.TryAdd(m.Vm, m))
            {
                order.Add(m.Vm);
            }

            last[m.Vm] = m.To;
        }

        return [.. order.Select(v => first[v] with { To = last[v] }).Where(m => m.From != m.To)];
    }

    /// <summary>VMs moved since the checkpoint, each once, in the order first moved.</summary>
    public IEnumerable<int> MovedSince(int checkpoint)
    {
        var seen = new HashSet<int>();
        for (int k = checkpoint; k < _log.Count; k++)
        {
            if (seen.Add(_log[k].Vm))
            {
                yield return _log[k].Vm;
            }
        }
    }

    public long Load(int host)
    {
        long load = 0;
        for (int v = 0; v < _location.Length; v++)
        {
            if (_location[v] == host)
            {
                load += _index.Memory[v];
            }
        }

        return load;
    }

    public bool HoldsVmFrom(int host, int home)
    {
        for (int v = 0; v < _location.Length; v++)
        {
            if (_location[v] == host && _index.Home[v] == home)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The VMs now on these hosts that are to move, largest first (then canonical order).</summary>
    public int[] VmsOn(int[] hosts)
    {
        var vms = new List<int>();
        for (int v = 0; v < _location.Length; v++)
        {
            // A pinned VM (--shutdown-pinned-vms) never moves: it stays on its host, shut down through the reboot.
            if (Array.IndexOf(hosts, _location[v]) >= 0 && !_index.IsPinned(v))
            {
                vms.Add(v);
            }
        }

        var memory = _index.Memory;
        vms.Sort((a, b) =>
        {
            int c = memory[b].CompareTo(memory[a]);
            return c != 0 ? c : a.CompareTo(b);
        });
        return [.. vms];
    }

    /// <summary>The VM is shut down (its host reboots with it): it leaves the simulation. Location becomes -1.</summary>
    public void Halt(int vm)
    {
        if (_location[vm] >= 0)
        {
            Move(vm, Halted);
        }
    }

    private void Apply(int vm, int from, int to)
    {
        long memory = _index.Memory[vm];
        _location[vm] = to;
        foreach (int host in (ReadOnlySpan<int>)[from, to])
        {
            if (host == Halted)
            {
                continue;
            }

            int sign = host == from ? 1 : -1;
            _free[host] += sign * memory;
            foreach (int g in _index.Groups[vm])
            {
                _groupCount[(host * _groupTotal) + g] -= sign;
            }

            foreach (int g in _index.SoftGroups[vm])
            {
                _softCount[(host * _softTotal) + g] -= sign;
            }
        }
    }
}
