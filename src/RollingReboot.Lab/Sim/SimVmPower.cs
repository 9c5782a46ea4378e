using System.Text.Json.Nodes;

namespace RollingReboot.Lab.Sim;

/// <summary>
/// VM.clean_shutdown, VM.hard_shutdown and VM.start_on as xapi-project/xen-api has them:
/// <list type="bullet">
/// <item>ocaml/xapi/xapi_vm_lifecycle.ml: allowed_power_states (clean_shutdown: Running; hard_shutdown: Paused, Suspended,
/// Running; start_on: Halted; else VM_BAD_POWER_STATE [vm; expected, lowercase, ", "-joined; actual]),
/// is_allowed_concurrently (hard_shutdown runs beside anything but another hard_shutdown; clean_shutdown only beside
/// migrate_send; else OTHER_OPERATION_IN_PROGRESS), check_op_for_feature (with strict=true, as with_vm_operation
/// defaults: a live HVM guest without PV drivers that advertises neither feature-shutdown nor feature-poweroff cannot be
/// asked to shut down: VM_LACKS_FEATURE [vm]).</item>
/// <item>ocaml/xapi/message_forwarding.ml: hard_shutdown first cancels the VM's clean_shutdown (and other) tasks;
/// start_on refuses a host that is evacuating (HOST_EVACUATE_IN_PROGRESS [host]), then assert_can_boot_here.</item>
/// <item>ocaml/xapi/xapi_vm_helpers.ml assert_can_boot_here: HOST_NOT_LIVE [], HOST_DISABLED [host], the VM's SRs seen by
/// the host (VM_REQUIRES_SR), memory (HOST_NOT_ENOUGH_FREE_MEMORY [needed; available]).</item>
/// <item>ocaml/xapi/xapi_vm.ml: clean and hard shutdown set ha_always_run false; start sets it true again when the restart
/// priority is "restart".</item>
/// <item>ocaml/xenopsd/lib/xenops_server.ml: a guest that does not acknowledge the shutdown request within
/// domain_shutdown_ack_timeout (60 s) fails it, which xapi_xenops.ml raises as VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT [vm].</item>
/// </list>
/// Lab extensions per VM: <c>shutdownSeconds</c> (how long the guest takes, default 20), <c>ignoresShutdown</c> (it never
/// acknowledges), <c>featureShutdown</c> (an agent without PV drivers that advertises feature-shutdown=1).
/// </summary>
internal sealed partial class SimPool
{
    /// <summary>xenopsd's domain_shutdown_ack_timeout.</summary>
    internal const double ShutdownAckSeconds = 60;

    /// <summary>Simulated seconds a VM.start takes (domain build, devices).</summary>
    internal const double StartSeconds = 5;

    /// <summary>Simulated seconds a VM.hard_shutdown takes (domain destroy).</summary>
    internal const double HardShutdownSeconds = 2;

    private static XapiError BadPowerState(SimVm vm, string expected) =>
        new("VM_BAD_POWER_STATE", vm.Ref, expected, vm.PowerState.ToLowerInvariant());


    /// <summary>xapi_vm_lifecycle.ml check_operation_error: no power operation on a control domain.</summary>
    internal static void RefuseControlDomain(SimVm vm)
    {
        if (vm.IsControlDomain)
        {
            throw new XapiError("OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain");
        }
    }

    /// <summary>check_op_for_feature: PV-booted guests and full PV drivers offer every feature implicitly.</summary>
    internal static bool CanBeAskedToShutDown(SimVm vm) =>
        vm.DomainType is "pv" or "pvh" or "pv_in_pvh" || vm.PvDrivers || vm.FeatureShutdown;

    /// <summary>
    /// What VM.clean_shutdown and VM.clean_reboot both require: not the control domain, Running
    /// (xapi_vm_lifecycle.ml allowed_power_states), no other operation but a migrate_send, and a guest that can be asked
    /// (check_op_for_feature: VM_LACKS_FEATURE [vm]).
    /// </summary>
    private void AssertCanBeAskedToShutDown(SimVm vm)
    {
        RefuseControlDomain(vm);
        if (vm.PowerState != "Running")
        {
            throw BadPowerState(vm, "running");
        }

        if (vm.CurrentOperations.Values.Any(op => op != "migrate_send") && BusyError(vm) is { } busy)
        {
            throw new XapiError(busy[0], busy[1..]);
        }

        if (!CanBeAskedToShutDown(vm))
        {
            throw new XapiError("VM_LACKS_FEATURE", vm.Ref);
        }
    }

    private Task<JsonNode?> VmCleanShutdown(string m, List<JsonNode?> a, SimTask? task)
    {
        Arity(m, a, 1);
        var vm = VmArg(a, 0, m);
        AssertCanBeAskedToShutDown(vm);

        var op = task?.Ref ?? NewRef();
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        vm.CurrentOperations[op] = "clean_shutdown";
        vm.HaAlwaysRun = false;
        Touch("vm", vm.Ref, "mod");
        NoteStateChange();
        Audit.Event("vm.shutdown.start", new Dictionary<string, object?> { ["vm"] = vm.Name, ["host"] = vm.ResidentOn?.Name, ["how"] = "clean" });
        var host = vm.ResidentOn;

        void End(XapiError? error)
        {
            if (!vm.CurrentOperations.Remove(op))
            {
                return;
            }

            Touch("vm", vm.Ref, "mod");
            if (error is not null)
            {
                Audit.Event("vm.shutdown.failed", new Dictionary<string, object?> { ["vm"] = vm.Name, ["how"] = "clean", ["error"] = error.Code });
                done.TrySetException(error);
                return;
            }

            Halt(vm, "clean", host);
            done.TrySetResult(JsonValue.Create(""));
        }

        if (task is not null)
        {
            // task.cancel: xenopsd's shutdown is cancellable; the VM keeps running.
            task.Cancel = () => End(new XapiError("TASK_CANCELLED", task.Ref));
        }

        Schedule(Now + (vm.IgnoresShutdown ? ShutdownAckSeconds : vm.ShutdownSeconds), () =>
            End(vm.IgnoresShutdown ? new XapiError("VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT", vm.Ref) : vm.PowerState == "Running" ? null : BadPowerState(vm, "running")));
        return done.Task;
    }

    private Task<JsonNode?> VmHardShutdown(string m, List<JsonNode?> a, SimTask? task)
    {
        Arity(m, a, 1);
        var vm = VmArg(a, 0, m);
        RefuseControlDomain(vm);

        if (vm.PowerState is not ("Running" or "Paused" or "Suspended"))
        {
            throw BadPowerState(vm, "paused, suspended, running");
        }

        if (vm.CurrentOperations.Values.Contains("hard_shutdown") && BusyError(vm) is { } busy)
        {
            throw new XapiError(busy[0], busy[1..]);
        }

        // message_forwarding.ml hard_shutdown: cancel the VM's clean_shutdown, clean_reboot, hard_reboot, pool_migrate,
        // call_plugin, shutdown and suspend tasks first.
        foreach (var (opRef, operation) in vm.CurrentOperations.ToList())
        {
            if (operation is "clean_shutdown" or "clean_reboot" or "hard_reboot" or "shutdown" or "suspend"
                && Tasks.TryGetValue(opRef, out var other) && other.Cancel is { } cancel)
            {
                cancel();
            }
        }

        var op = task?.Ref ?? NewRef();
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        vm.CurrentOperations[op] = "hard_shutdown";
        vm.HaAlwaysRun = false;
        Touch("vm", vm.Ref, "mod");
        NoteStateChange();
        var host = vm.ResidentOn;
        Schedule(Now + HardShutdownSeconds, () =>
        {
            vm.CurrentOperations.Remove(op);
            Halt(vm, "hard", host);
            done.TrySetResult(JsonValue.Create(""));
        });
        return done.Task;
    }

    private void Halt(SimVm vm, string how, SimHost? host)
    {
        vm.PowerState = "Halted";
        vm.ResidentOn = null;
        // xapi_vm_lifecycle.ml force_state_reset_keep_current_operations: Halted removes restart_device_model and restart_vm.
        RemoveVmGuidances(vm, "restart_device_model", "restart_vm");
        if (host is not null)
        {
            vm.OtherConfig["last_host"] = host.Uuid;
            Touch("host", host.Ref, "mod");
            Touch("host_metrics", host.MetricsRef, "mod");
        }

        Touch("vm", vm.Ref, "mod");
        Audit.Event("vm.shutdown", new Dictionary<string, object?> { ["vm"] = vm.Name, ["host"] = host?.Name, ["how"] = how });
    }

    private Task<JsonNode?> VmStartOn(string m, List<JsonNode?> a, SimTask? task)
    {
        Arity(m, a, 4);
        var vm = VmArg(a, 0, m);
        var host = HostArg(a, 1, m);
        var paused = Bool(a, 2, m);
        _ = Bool(a, 3, m);
        if (host.CurrentOperations.ContainsValue("evacuate"))
        {
            throw new XapiError("HOST_EVACUATE_IN_PROGRESS", host.Ref);
        }

        RefuseControlDomain(vm);

        if (vm.PowerState != "Halted")
        {
            throw BadPowerState(vm, "halted");
        }

        if (BusyError(vm) is { } busy)
        {
            throw new XapiError(busy[0], busy[1..]);
        }

        CheckCanRunOn(vm, host);
        var op = task?.Ref ?? NewRef();
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        vm.CurrentOperations[op] = "start_on";
        // The memory is reserved from the start (message_forwarding.ml reserve_memory_for_vm: scheduled_to_be_resident_on).
        vm.StartingOn = host;
        Touch("vm", vm.Ref, "mod");
        NoteStateChange();
        Schedule(Now + StartSeconds, () =>
        {
            vm.CurrentOperations.Remove(op);
            vm.StartingOn = null;
            if (host.Power != HostPower.Up)
            {
                Touch("vm", vm.Ref, "mod");
                done.TrySetException(new XapiError("HOST_NOT_LIVE"));
                return;
            }

            vm.PowerState = paused ? "Paused" : "Running";
            vm.ResidentOn = host;
            // xapi_xenops.ml (a new start_time on a VM start or reboot): restart_device_model and restart_vm go.
            RemoveVmGuidances(vm, "restart_device_model", "restart_vm");
            if (vm.HaRestartPriority == "restart")
            {
                vm.HaAlwaysRun = true;
            }

            Touch("vm", vm.Ref, "mod");
            Touch("host", host.Ref, "mod");
            Touch("host_metrics", host.MetricsRef, "mod");
            Audit.Event("vm.start", new Dictionary<string, object?> { ["vm"] = vm.Name, ["host"] = host.Name, ["by"] = "VM.start_on" });
            done.TrySetResult(JsonValue.Create(""));
        });
        return done.Task;
    }
}
