# Permissions workload: no immutability rules (`protect: none`).
package policy

rules := []
