# Lists the machines a Vagrantfile defines (one name a line) without Vagrant or a provider: the
# Vagrantfile is evaluated against a stub whose config.vm.define records names and whose every
# other setting is accepted and ignored. Used by ci/validate-vagrantfile.sh where no provider
# (libvirt, VirtualBox) is usable, as on CI machines that must not run a libvirt network.
#   ruby ci/vagrant-machines.rb Vagrantfile
class Anything
  def method_missing(_name, *_args)
    yield Anything.new if block_given?
    self
  end

  def respond_to_missing?(*) = true
end

class StubVM < Anything
  def define(name, *_args)
    $machines << name.to_s
    yield StubConfig.new if block_given?
    self
  end
end

class StubConfig < Anything
  def vm = (@vm ||= StubVM.new)
end

module Vagrant
  def self.configure(_version)
    yield StubConfig.new
  end
end

$machines = []
file = File.expand_path(ARGV.fetch(0, 'Vagrantfile'))
eval(File.read(file), binding, file) # rubocop:disable Security/Eval -- our own Vagrantfile
puts $machines
