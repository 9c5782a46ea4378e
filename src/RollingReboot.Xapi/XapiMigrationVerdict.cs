namespace RollingReboot.Xapi;

/// <summary>
/// XAPI's own verdict on whether a VM can live-migrate at all: VM.allowed_operations, which xapi computes with
/// xapi_vm_lifecycle.ml check_operation_error ~strict:true, the same check host.evacuate (xapi_host.ml
/// get_vms_which_prevent_evacuation) and VM.pool_migrate without force (message_forwarding.ml) apply. rollreboot
/// does not guess from the VM's hardware (a suspendable NVIDIA vGPU, an NVIDIA SR-IOV function, a PV-booted guest
/// without drivers or an agent advertising feature-suspend all migrate); only when XAPI leaves pool_migrate out does
/// it name the likely reason, in the order check_operation_error tries them.
/// </summary>
public static class XapiMigrationVerdict
{
    /// <summary>The error code XAPI would give VM.pool_migrate for this VM wherever it goes, or null when XAPI allows it,
    /// the VM is not running, or it is only busy with another operation (a wait, not a refusal).</summary>
    public static string? Refusal(XapiVmRecord vm, XapiVmGuestMetricsRecord? guest)
    {
        if (vm.PowerState is not ("Running" or "Paused") || vm.AllowedOperations.Contains("pool_migrate") || vm.CurrentOperations.Count > 0)
        {
            return null;
        }

        if (IsTrue(vm.Platform, "nomigrate") || IsTrue(vm.Platform, "nested-virt"))
        {
            return "VM_IS_IMMOBILE";
        }

        var other = guest?.Other ?? new Dictionary<string, string>();
        if (other.ContainsKey("data-cant-suspend-reason"))
        {
            return "VM_NON_SUSPENDABLE";
        }

        bool implicitSupport = vm.DomainType is "pv" or "pvh" or "pv_in_pvh" || guest?.HasPvDrivers == true;
        if (!implicitSupport && !(other.TryGetValue("feature-suspend", out var suspend) && suspend == "1"))
        {
            return "VM_LACKS_FEATURE";
        }

        if (vm.AttachedPcis.Count > 0)
        {
            return "VM_HAS_PCI_ATTACHED";
        }

        if (vm.Vgpus.Count > 0)
        {
            return "VM_HAS_VGPU";
        }

        return vm.Vusbs.Count > 0 ? "VM_HAS_VUSBS" : "OPERATION_NOT_ALLOWED";
    }

    // Vm_platform.is_true: "true" or "1".
    private static bool IsTrue(IReadOnlyDictionary<string, string> platform, string key) =>
        platform.TryGetValue(key, out var value) && (value.Equals("true", StringComparison.OrdinalIgnoreCase) || value == "1");
}
