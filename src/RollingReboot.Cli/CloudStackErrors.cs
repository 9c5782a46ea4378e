using RollingReboot.Core.Ports;

namespace RollingReboot.Cli;

public static class CloudStackErrors
{
    /// <summary>One line for a CloudStack failure while finding or driving the cluster, in the operator's words.</summary>
    public static string Describe(CloudStackException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return "CloudStack: " + (e.ErrorCode == 401
            ? "the API key or secret key was refused (401); check ROLLREBOOT_CLOUDSTACK_API_KEY / _SECRET_KEY or the CloudMonkey profile"
            : e.Message);
    }
}
